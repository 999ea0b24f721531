"""The key store on its own: one JWKS URL, an httpx client answered by a mock
transport, time on a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from pingapp.core.keys import AmbiguousKey, KeyStore, KeysUnavailable, UnknownKey
from tests.support.clock import FakeClock
from tests.support.issuers import Key, new_key

JWKS_URL = "https://idp.example/jwks.json"


class Jwks:
    """What the mock JWKS endpoint answers, and how often it was asked."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.calls = 0

    def publish(self, *keys: Key) -> None:
        self.document = {"keys": [key.jwk() for key in keys]}

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        assert str(request.url) == JWKS_URL
        self.calls += 1
        return httpx2.Response(self.status, json=self.document)


@pytest.fixture(scope="module")
def keys() -> list[Key]:
    return [new_key("k1"), new_key("k2")]


@pytest.fixture
def jwks(keys: list[Key]) -> Jwks:
    served = Jwks()
    served.publish(keys[0])
    return served


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def store_for(jwks: Jwks, clock: FakeClock, **options: Any) -> KeyStore:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(jwks.handle))
    return KeyStore(JWKS_URL, client=lambda: client, monotonic=clock.monotonic, **options)


async def test_a_known_kid_is_fetched_once_and_kept(jwks: Jwks, clock: FakeClock) -> None:
    store = store_for(jwks, clock)
    key = await store.key("k1", "RS256")
    assert key.key_id == "k1"
    assert await store.key("k1", "RS256") is key
    assert (jwks.calls, store.fetches) == (1, 1)
    assert store.holds("k1", "RS256", key)


async def test_unknown_kids_refetch_once_then_wait_for_the_cooldown(
    jwks: Jwks, clock: FakeClock
) -> None:
    store = store_for(jwks, clock)
    await store.key("k1", "RS256")
    clock.advance(store.cooldown)
    outcomes = await asyncio.gather(
        *(store.key(f"nope-{n}", "RS256") for n in range(50)), return_exceptions=True
    )
    assert all(isinstance(outcome, UnknownKey) for outcome in outcomes)
    assert jwks.calls == 2
    clock.advance(store.cooldown - 1)
    with pytest.raises(UnknownKey):
        await store.key("nope", "RS256")
    assert jwks.calls == 2


async def test_a_failed_fetch_is_remembered_for_failure_retry(jwks: Jwks, clock: FakeClock) -> None:
    jwks.status = 503
    store = store_for(jwks, clock, failure_retry=5)
    outcomes = await asyncio.gather(
        *(store.key("k1", "RS256") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(outcome, KeysUnavailable) for outcome in outcomes)
    assert jwks.calls == 1
    clock.advance(4)
    with pytest.raises(KeysUnavailable) as caught:
        await store.key("k1", "RS256")
    assert "503" in caught.value.reason
    assert jwks.calls == 1
    jwks.status = 200
    clock.advance(2)
    assert (await store.key("k1", "RS256")).key_id == "k1"
    assert jwks.calls == 2


async def test_a_withdrawn_or_replaced_key_is_no_longer_held(
    jwks: Jwks, clock: FakeClock, keys: list[Key]
) -> None:
    store = store_for(jwks, clock)
    first = await store.key("k1", "RS256")
    jwks.publish(Key("k1", keys[1].private))  # same kid, other key material
    clock.advance(store.max_age)
    assert not store.holds("k1", "RS256", first)  # too old to vouch for it
    assert await store.key("k1", "RS256") is first  # served while the refetch runs
    await store.settled()
    assert store.changes == 2
    assert not store.holds("k1", "RS256", first)
    assert store.holds("k1", "RS256", await store.key("k1", "RS256"))


async def test_an_unchanged_key_keeps_its_object_across_a_refetch(
    jwks: Jwks, clock: FakeClock
) -> None:
    store = store_for(jwks, clock)
    first = await store.key("k1", "RS256")
    clock.advance(store.max_age)
    await store.key("k1", "RS256")
    await store.settled()
    assert jwks.calls == 2
    assert store.holds("k1", "RS256", first)


async def test_without_kid_only_a_sole_key_is_used(
    jwks: Jwks, clock: FakeClock, keys: list[Key]
) -> None:
    store = store_for(jwks, clock)
    assert (await store.key(None, "RS256")).key_id == "k1"
    jwks.publish(*keys)
    clock.advance(store.cooldown)
    await store.key("k2", "RS256")
    with pytest.raises(AmbiguousKey):
        await store.key(None, "RS256")


async def test_only_allowed_algorithms_are_kept(jwks: Jwks, clock: FakeClock) -> None:
    store = store_for(jwks, clock, algorithms={"PS256"})
    assert (await store.key("k1", "PS256")).algorithm_name == "PS256"
    with pytest.raises(UnknownKey):
        await store.key("k1", "RS256")


async def test_the_jwks_uri_may_be_found_by_discovery(jwks: Jwks, clock: FakeClock) -> None:
    asked: list[str] = []

    async def discover() -> str:
        asked.append("discovery")
        return JWKS_URL

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(jwks.handle)) as client:
        store = KeyStore(discover, client=client, monotonic=clock.monotonic)
        assert (await store.key("k1", "RS256")).key_id == "k1"
    assert asked == ["discovery"]


@pytest.mark.parametrize(
    "options",
    [{"cooldown": 29}, {"algorithms": ["HS256"]}, {"algorithms": ["none"]}, {"fetch_timeout": 0}],
)
def test_unsafe_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        KeyStore(JWKS_URL, client=httpx2.AsyncClient, **options)
