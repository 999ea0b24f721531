"""The sessions list's pieces (docs/sessions.md): the User-Agent as ua-parser reads it,
the coarse address, the pacing of `last_used`, and that a session is ended only for
its owner. A real Vault on a DiskStore, with a clock the tests move by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pingapp.auth.devices import (
    USER_AGENT_LIMIT,
    clean_agent,
    coarse_address,
    describe_agent,
    end_owned_session,
    same_owner,
    sessions_of_owner,
)
from pingapp.oidc.session import LAST_USED_INTERVAL, ServerSession, Vault
from pingapp.oidc.store import DiskStore

ISSUER = "https://idp.example.test/"
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore(DiskStore):
    """A DiskStore that counts reads and writes of session records."""

    def __init__(self, folder: Path, clock: Clock) -> None:
        super().__init__(folder, clock=clock)
        self.reads = self.writes = 0

    async def get(self, key: str) -> bytes | None:
        self.reads += key.startswith("session:")
        return await super().get(key)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self.writes += key.startswith("session:")
        await super().put(key, value, ttl)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> CountingStore:
    return CountingStore(tmp_path / "sessions", clock)


@pytest.fixture
def vault(store: CountingStore, clock: Clock) -> Vault:
    return Vault(store, Fernet.generate_key(), max_age=86_400, clock=clock)


def session_of(sub: str, issuer: str = ISSUER, refresh: str = "") -> ServerSession:
    return ServerSession(
        access_token=f"at-{sub}",
        refresh_token=refresh or f"rt-{sub}",
        claims={"iss": issuer, "sub": sub, "sid": f"sid-{sub}"},
        tabs=[f"tab-of-{sub}"],
    )


async def new_session(vault: Vault, session: ServerSession) -> str:
    return vault.reference(await vault.create(session))


# --- what the list shows of a browser -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "browser", "system"),
    [
        (CHROME_LINUX, "Chrome 131", "Linux"),
        (FIREFOX_WINDOWS, "Firefox 133", "Windows 10"),
        (SAFARI_IPHONE, "Mobile Safari 17", "iOS 17.5"),
        ("", "Unknown browser", "unknown system"),
        ("curl/8.5.0", "curl 8", "unknown system"),
        ("complete nonsense", "Unknown browser", "unknown system"),
    ],
)
def test_browser_and_system_come_from_ua_parser(header: str, browser: str, system: str) -> None:
    agent = describe_agent(header)
    assert (agent.browser, agent.system) == (browser, system)
    assert agent.text == f"{browser} on {system}"


def test_a_stored_user_agent_is_printable_and_bounded() -> None:
    assert clean_agent("Firefox\r\n\x00Set-Cookie: x") == "FirefoxSet-Cookie: x"
    assert clean_agent("é" + "a" * 2000) == "a" * USER_AGENT_LIMIT


@pytest.mark.parametrize(
    ("counted", "stored"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("127.0.0.1", "127.0.0.0/24"),
        # clientaddr counts an IPv6 client by its /64: kept as its /48.
        ("2001:db8:1234:5678::/64", "2001:db8:1234::/48"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::/48"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),
        ("testclient", ""),
        ("unknown", ""),
        ("", ""),
        ("10.0.0.0/8", ""),  # wider than what is kept: names no client
    ],
)
def test_only_the_network_of_an_address_is_kept(counted: str, stored: str) -> None:
    assert coarse_address(counted) == stored


# --- last_used, paced ------------------------------------------------------------------------


async def test_last_used_is_written_at_most_once_a_minute(
    vault: Vault, store: CountingStore, clock: Clock
) -> None:
    session_hash = await new_session(vault, session_of("alice"))
    created = clock.now
    store.reads = store.writes = 0

    clock.now += 10
    assert not await vault.touch(session_hash)  # a minute after sign-in: not yet
    assert store.writes == 0

    clock.now += LAST_USED_INTERVAL
    assert await vault.touch(session_hash)
    stored = await vault.load(session_hash)
    assert stored is not None and stored.last_used == clock.now
    assert stored.created_at == created
    writes, reads = store.writes, store.reads

    # Within the minute: neither a write nor a read, however often.
    for _ in range(100):
        clock.now += 0.5
        assert not await vault.touch(session_hash)
    assert (store.writes, store.reads) == (writes, reads)

    clock.now += LAST_USED_INTERVAL
    assert await vault.touch(session_hash)
    assert store.writes == writes + 1


async def test_a_session_already_loaded_costs_no_read(
    vault: Vault, store: CountingStore, clock: Clock
) -> None:
    session_hash = await new_session(vault, session_of("alice"))
    seen = await vault.load(session_hash)
    store.reads = store.writes = 0
    clock.now += 5
    assert not await vault.touch(session_hash, seen)
    assert (store.reads, store.writes) == (0, 0)


async def test_another_backends_write_counts_too(
    store: CountingStore, clock: Clock, vault: Vault
) -> None:
    """Two processes on one store: one that never wrote the time finds it fresh."""
    session_hash = await new_session(vault, session_of("alice"))
    clock.now += LAST_USED_INTERVAL + 1
    assert await vault.touch(session_hash)
    vault._touched.clear()  # as another process, which never wrote it
    store.writes = 0
    clock.now += 1
    assert not await vault.touch(session_hash)
    assert store.writes == 0


async def test_touch_creates_nothing(vault: Vault, store: CountingStore, clock: Clock) -> None:
    clock.now += LAST_USED_INTERVAL * 2
    assert not await vault.touch("0" * 64)
    assert not await vault.touch("")
    assert await store.count() == 0


# --- ownership -------------------------------------------------------------------------------


class Provider:
    def __init__(self) -> None:
        self.revoked: list[str] = []
        self.signed_out: list[list[str]] = []

    async def revoke(self, token: str) -> bool:
        self.revoked.append(token)
        return True

    async def notify(self, tabs: list[str], except_token: str) -> None:
        assert except_token == ""
        self.signed_out.append(tabs)


def test_same_owner_needs_the_same_issuer_and_sub() -> None:
    assert same_owner(session_of("alice"), session_of("alice"))
    assert not same_owner(session_of("alice"), session_of("bob"))
    assert not same_owner(session_of("alice"), session_of("alice", issuer="https://evil.test/"))
    assert not same_owner(ServerSession(access_token="x"), ServerSession(access_token="y"))


async def test_the_owner_ends_another_of_their_sessions(vault: Vault) -> None:
    mine = await new_session(vault, session_of("alice", refresh="rt-1"))
    other = await new_session(vault, session_of("alice", refresh="rt-2"))
    listed = [h for h, _ in await sessions_of_owner(vault, mine)]
    assert sorted(listed) == sorted([mine, other])
    provider = Provider()
    assert await end_owned_session(
        vault, mine, other, revoke=provider.revoke, notify=provider.notify
    )
    assert await vault.load(other) is None
    assert await vault.load(mine) is not None
    assert provider.revoked == ["rt-2"]
    assert provider.signed_out == [["tab-of-alice"]]
    assert [h for h, _ in await sessions_of_owner(vault, mine)] == [mine]


async def test_another_users_session_is_not_ended(vault: Vault) -> None:
    alice = await new_session(vault, session_of("alice"))
    bob = await new_session(vault, session_of("bob"))
    mallory = await new_session(vault, session_of("bob", issuer="https://evil.test/"))
    provider = Provider()
    for caller, target in [(alice, bob), (mallory, bob), (bob, alice), ("", bob), (alice, "")]:
        assert not await end_owned_session(
            vault, caller, target, revoke=provider.revoke, notify=provider.notify
        )
    assert all([await vault.load(h) for h in (alice, bob, mallory)])
    assert provider.revoked == provider.signed_out == []
    # A bob of another issuer is not bob: his list is his own.
    assert [h for h, _ in await sessions_of_owner(vault, mallory)] == [mallory]


async def test_an_ended_caller_ends_nothing(vault: Vault) -> None:
    mine = await new_session(vault, session_of("alice"))
    other = await new_session(vault, session_of("alice"))
    await vault.end(mine)
    provider = Provider()
    assert not await end_owned_session(
        vault, mine, other, revoke=provider.revoke, notify=provider.notify
    )
    assert await vault.load(other) is not None
    assert await sessions_of_owner(vault, mine) == []


async def test_the_callers_own_session_is_not_ended_this_way(vault: Vault) -> None:
    """This browser's row is Log Out (the provider's session too), not this path."""
    mine = await new_session(vault, session_of("alice"))
    provider = Provider()
    assert not await end_owned_session(
        vault, mine, mine, revoke=provider.revoke, notify=provider.notify
    )
    assert await vault.load(mine) is not None


async def test_a_session_without_a_refresh_token_ends_without_a_revocation(vault: Vault) -> None:
    mine = await new_session(vault, session_of("alice"))
    bare = session_of("alice")
    bare.refresh_token = ""
    other = await new_session(vault, bare)
    provider = Provider()
    assert await end_owned_session(
        vault, mine, other, revoke=provider.revoke, notify=provider.notify
    )
    assert provider.revoked == []
