"""SECURITY 49: one proof key cannot fill a replay cache. Each key holds a bounded share
of `MemoryReplayCache`; past it, that key forgets its own oldest entries (and its
replays of them stay refused), while other keys' entries stay. `StoreReplayCache`
lets one key record a bounded number of proofs a minute. Time is a clock the tests
move; nothing sleeps."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from pingapp.dpop import (
    DPoPError,
    DPoPKey,
    MemoryReplayCache,
    StoreReplayCache,
    check_proof,
    make_proof,
)
from pingapp.oidc.store import DiskStore
from tests.support.clock import FakeClock

NOW = 1_800_000_000.0
URL = "https://api.example.org/api/private"
TOKEN = "an-access-token"
CHECKS: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN}


def clock_at(now: float = NOW) -> FakeClock:
    clock = FakeClock()
    clock.now = now
    return clock


@pytest.fixture(scope="module")
def keys() -> tuple[DPoPKey, DPoPKey]:
    return DPoPKey.generate(), DPoPKey.generate()


def proof(key: DPoPKey, iat: float) -> str:
    return make_proof(key, "GET", URL, access_token=TOKEN, now=iat)


async def test_a_flood_by_one_key_does_not_evict_another_keys_proofs(
    keys: tuple[DPoPKey, DPoPKey],
) -> None:
    attacker, victim = keys
    clock = clock_at()
    cache = MemoryReplayCache(max_entries=10, max_per_owner=4, clock=clock.time)

    async def check(made: str) -> None:
        await check_proof(made, replay=cache, clock=clock.time, **CHECKS)

    victims = proof(victim, NOW - 30)
    await check(victims)
    first = proof(attacker, NOW - 20)
    await check(first)
    for step in range(1, 20):  # five times its share, more than the whole cache
        await check(proof(attacker, NOW - 20 + step))
    assert len(cache) == 4 + 1  # the attacker's share, and the victim's proof

    # The victim's proof is still remembered: its replay is refused as such ...
    with pytest.raises(DPoPError, match="already used"):
        await check(victims)
    # ... and its older proofs are not refused for what the attacker's key forgot.
    await check(proof(victim, NOW - 30))

    # The attacker's forgotten proofs stay refused, as does any other proof as old.
    with pytest.raises(DPoPError, match="already used"):
        await check(first)
    with pytest.raises(DPoPError, match="already used"):
        await check(proof(attacker, NOW - 20 + 15))
    await check(proof(attacker, NOW))
    # Everything expires in its time.
    clock.now = NOW + 70
    await check(proof(victim, NOW + 70))
    assert len(cache) == 1


def test_a_key_over_its_share_forgets_its_own_soonest_expiring_entry() -> None:
    clock = clock_at()
    cache = MemoryReplayCache(max_entries=100, max_per_owner=3, clock=clock.time)
    assert cache.remember("b", NOW + 5, "B")
    for number in range(6):
        assert cache.remember(f"a{number}", NOW + 10 + number, "A")
    assert len(cache) == 3 + 1
    # a0..a2 forgotten, a3..a5 kept: all refused, and so is anything expiring as early.
    assert not any(cache.remember(f"a{number}", NOW + 10 + number, "A") for number in range(6))
    assert not cache.remember("a-new", NOW + 12, "A")
    # A proof that would expire before everything the key holds is the one to forget.
    assert not cache.remember("a-old", NOW + 12.5, "A")
    assert cache.remember("a-late", NOW + 30, "A")
    # B was never touched: its entry is there, and an earlier expiry is still fine.
    assert not cache.remember("b", NOW + 5, "B")
    assert cache.remember("b-early", NOW + 1, "B")
    # Once everything has expired, the key starts afresh.
    clock.now = NOW + 31
    assert len(cache) <= 5
    assert cache.remember("a-next", NOW + 40, "A")
    assert len(cache) == 1


def test_a_long_flood_by_one_key_leaves_the_cache_small_and_working() -> None:
    clock = clock_at()
    cache = MemoryReplayCache(max_entries=10, max_per_owner=2, clock=clock.time)
    assert cache.remember("b", NOW + 500, "B")
    for number in range(1000):
        assert cache.remember(f"a{number}", NOW + 10 + number / 10, "A")
        assert len(cache) <= 3
        # What the key forgot does not pile up in memory either (white box: the queue).
        assert len(cache._queue) <= 2 * 10 + 1
    assert not cache.remember("b", NOW + 500, "B")
    assert not cache.remember("a500", NOW + 60, "A")
    clock.now = NOW + 200
    assert cache.remember("a-next", NOW + 260, "A")
    assert len(cache) == 2  # B's entry and this one


def test_past_its_share_a_key_is_refused_proofs_as_old_as_all_it_holds() -> None:
    """Proofs made in the same second expire together: with the share full of them, a
    fourth would push one out, which could then come back as new."""
    cache = MemoryReplayCache(max_entries=100, max_per_owner=3, clock=clock_at().time)
    assert all(cache.remember(f"a{number}", NOW + 10, "A") for number in range(3))
    assert not cache.remember("a3", NOW + 10, "A")
    assert cache.remember("a4", NOW + 11, "A")
    assert not any(cache.remember(f"a{number}", NOW + 10, "A") for number in range(4))


def test_the_default_share_is_a_quarter_of_the_cache() -> None:
    cache = MemoryReplayCache(max_entries=8, clock=clock_at().time)
    for number in range(8):
        assert cache.remember(f"a{number}", NOW + 10 + number, "A")
    assert len(cache) == 2
    for number in range(6):
        assert cache.remember(f"o{number}", NOW + 10, f"other-{number}")
    assert len(cache) == 8


def traffic(
    rng: random.Random, number: int, now: float, owners: str, accepted: dict[str, float]
) -> tuple[str, float, str]:
    """A key, its expiry and its owner: a new one expiring on a whole second (as proofs
    of one second do together), or a replay of one of the last keys accepted."""
    if accepted and rng.random() < 0.3:
        key = rng.choice(list(accepted)[-30:])
        return key, accepted[key], key[0]
    owner = rng.choice(owners)
    return f"{owner}{number}", int(now) + rng.randint(1, 66), owner


@pytest.mark.parametrize("seed", range(6))
def test_with_room_for_every_share_a_key_fares_as_if_it_were_alone(seed: int) -> None:
    """Random traffic from four keys on one cache gets the same answers, key by key, as
    each key's own traffic on a cache of its own; a replay is never accepted."""
    rng = random.Random(seed)
    clock = clock_at()
    shared = MemoryReplayCache(max_entries=4 * 5, max_per_owner=5, clock=clock.time)
    alone = {owner: MemoryReplayCache(max_per_owner=5, clock=clock.time) for owner in "ABCD"}
    accepted: dict[str, float] = {}
    for number in range(3000):
        clock.now += rng.choice([0, 0, 0.5, 1, 3])
        key, expires, owner = traffic(rng, number, clock.now, "ABCD", accepted)
        answer = shared.remember(key, expires, owner)
        assert answer == alone[owner].remember(key, expires, owner), (number, key)
        assert not (answer and key in accepted and accepted[key] > clock.now), "a replay"
        if answer:
            accepted[key] = expires
        assert len(shared) <= 4 * 5


@pytest.mark.parametrize("seed", range(4))
def test_a_full_cache_never_lets_a_replay_through(seed: int) -> None:
    rng = random.Random(seed)
    clock = clock_at()
    cache = MemoryReplayCache(max_entries=12, max_per_owner=4, clock=clock.time)
    accepted: dict[str, float] = {}
    for number in range(4000):
        clock.now += rng.choice([0, 0, 0.25, 1])
        # More keys than the cache holds shares for.
        key, expires, owner = traffic(rng, number, clock.now, "ABCDEFGH", accepted)
        if cache.remember(key, expires, owner):
            assert not (key in accepted and accepted[key] > clock.now), "a replay"
            accepted[key] = expires
        assert len(cache) <= 12


async def test_the_store_cache_bounds_what_one_key_records_a_minute(tmp_path: Path) -> None:
    clock = clock_at()
    store = DiskStore(tmp_path / "store", clock=clock.time)
    cache = StoreReplayCache(store, clock=clock.time, max_per_owner=3)
    assert all([await cache.first_use(f"a{n}", NOW + 61, "A") for n in range(3)])
    assert not await cache.first_use("a3", NOW + 61, "A")  # over A's share: refused
    assert await cache.first_use("b0", NOW + 61, "B")  # B is not held back by A
    assert await store.count() == 4  # A's refused proof was not written
    # Replays are refused and do not count: replaying B's proof cannot lock B out.
    assert not any([await cache.first_use("b0", NOW + 61, "B") for _ in range(5)])
    assert all([await cache.first_use(f"b{n}", NOW + 61, "B") for n in (1, 2)])
    clock.now += 60  # a new minute: A may record again; its old proofs stay refused
    assert not await cache.first_use("a0", NOW + 61, "A")
    assert await cache.first_use("a3", NOW + 121, "A")
