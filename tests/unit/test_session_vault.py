"""The Vault and its DiskStore: one-use look-ups, expiry, encryption at rest.

Time is an injected clock that the tests move by hand: nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from pingapp.oidc import session
from pingapp.oidc.cookies import new_secret
from pingapp.oidc.login import PendingLogin
from pingapp.oidc.session import LOGIN_TTL, TICKET_TTL, LoginRecord, ServerSession, Vault
from pingapp.oidc.store import DiskStore

MAX_AGE = 86_400.0


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def store(folder: Path, clock: Clock) -> DiskStore:
    return DiskStore(folder, clock=clock)


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def vault(store: DiskStore, key: bytes, clock: Clock) -> Vault:
    return Vault(store, key, max_age=MAX_AGE, clock=clock)


def files_in(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.is_file()]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def a_session(**values: object) -> ServerSession:
    fields: dict[str, object] = {
        "access_token": "access-secret-1",
        "refresh_token": "refresh-secret-1",
        "id_token": "header.id-token-secret.signature",
        "expires_at": 0.0,
        "scope": "openid profile",
        # No iss/sub/sid: these sessions stay out of the back-channel logout index,
        # which has tests of its own below.
        "claims": {"email": "alice@example.test"},
        "tabs": ["tab-1"],
        **values,
    }
    return ServerSession(**fields)  # pyright: ignore[reportArgumentType]


def a_login(clock: Clock) -> LoginRecord:
    pending = PendingLogin(
        state=new_secret(),
        nonce=new_secret(),
        code_verifier=new_secret() + new_secret(),
        redirect_uri="http://localhost:3000/callback",
        return_to="/profile",
        started_at=clock(),
    )
    return LoginRecord(login=pending, browser="0" * 64)


# --- look-ups never create records --------------------------------------------------------


async def test_random_look_ups_create_nothing(vault: Vault, store: DiskStore, clock: Clock) -> None:
    session_id = await vault.create(a_session())
    await vault.put_login("handle-1", a_login(clock))
    await vault.issue_ticket(session_id, "/", browser=vault.reference("binding"))
    before = await store.count()
    assert before == 3
    for _ in range(100):
        assert await vault.load(vault.reference(new_secret())) is None
        assert await vault.take_login(new_secret()) is None
        assert await vault.redeem_ticket(new_secret()) is None
        async with vault.modify(vault.reference(new_secret())) as missing:
            assert missing is None
        assert await vault.end(vault.reference(new_secret())) is None
    assert await store.count() == before
    # And the real records are all still there.
    assert await vault.load(vault.reference(session_id)) is not None


@pytest.mark.parametrize("handle", ["", "x" * 201], ids=["empty", "oversized"])
async def test_empty_or_oversized_handles_find_nothing(vault: Vault, handle: str) -> None:
    assert await vault.take_login(handle) is None
    assert await vault.redeem_ticket(handle) is None


async def test_an_empty_session_hash_finds_nothing(vault: Vault) -> None:
    await vault.create(a_session())
    assert await vault.load("") is None
    assert await vault.end("") is None


# --- one use ------------------------------------------------------------------------------------


async def test_store_take_is_one_use(store: DiskStore) -> None:
    await store.put("k", b"value", 60)
    assert await store.take("k") == b"value"
    assert await store.take("k") is None
    assert await store.get("k") is None


async def test_a_pending_login_is_taken_once(vault: Vault, clock: Clock) -> None:
    record = a_login(clock)
    await vault.put_login("handle-1", record)
    taken = await vault.take_login("handle-1")
    assert taken == record
    assert await vault.take_login("handle-1") is None


async def test_a_ticket_is_redeemed_once(vault: Vault) -> None:
    ticket = await vault.issue_ticket("session-id", "/profile", browser=vault.reference("binding"))
    bound = await vault.redeem_ticket(ticket)
    assert bound is not None
    assert (bound.session_id, bound.return_to, bound.browser) == (
        "session-id",
        "/profile",
        vault.reference("binding"),
    )
    assert await vault.redeem_ticket(ticket) is None


async def test_a_session_ends_once(vault: Vault) -> None:
    session_id = await vault.create(a_session())
    ended = await vault.end(vault.reference(session_id))
    assert ended is not None
    assert ended.refresh_token == "refresh-secret-1"
    assert await vault.end(vault.reference(session_id)) is None
    assert await vault.load(vault.reference(session_id)) is None


async def test_the_session_id_is_not_stored_only_its_reference_names_it(vault: Vault) -> None:
    session_id = await vault.create(a_session())
    assert await vault.load(session_id) is None  # the raw id is not a key
    assert await vault.load(vault.reference(session_id)) is not None


# --- references: keyed digests (docs/security.md 45) -------------------------------------------


def test_a_reference_is_keyed(store: DiskStore, clock: Clock) -> None:
    """Without the vault's key nobody can compute a reference: not the plain
    SHA-256 of the secret, and another key gives another one."""
    one = Vault(store, Fernet.generate_key(), max_age=MAX_AGE, clock=clock)
    two = Vault(store, Fernet.generate_key(), max_age=MAX_AGE, clock=clock)
    secret = new_secret()
    assert one.reference(secret) == one.reference(secret)
    assert len(one.reference(secret)) == 64
    assert one.reference(secret) != hashlib.sha256(secret.encode()).hexdigest()
    assert one.reference(secret) != two.reference(secret)
    assert one.reference(secret) != one.reference(new_secret())
    # The same key (SESSION_ENCRYPTION_KEY on every worker) gives the same references.
    key = Fernet.generate_key()
    assert Vault(store, key, max_age=1).reference(secret) == Vault(store, key, max_age=1).reference(
        secret
    )


def test_matches_checks_a_secret_against_its_reference(vault: Vault) -> None:
    secret = new_secret()
    reference = vault.reference(secret)
    assert vault.matches(secret, reference)
    assert not vault.matches(new_secret(), reference)
    assert not vault.matches(reference, reference)  # the reference is not the secret
    assert not vault.matches("", reference)
    assert not vault.matches(secret, "")
    assert not vault.matches("", vault.reference(""))


async def test_a_reference_presented_as_an_id_is_referenced_again(vault: Vault) -> None:
    """A store key read from the store, presented where an id goes (a cookie, a
    ticket, a state), is referenced again and names nothing."""
    session_id = await vault.create(a_session())
    key = vault.reference(session_id)
    assert await vault.load(vault.reference(key)) is None
    ticket = await vault.issue_ticket(session_id, "/", browser=vault.reference("binding"))
    assert await vault.redeem_ticket(vault.reference(ticket)) is None
    assert await vault.redeem_ticket(ticket) is not None


# --- expiry ------------------------------------------------------------------------------------


async def test_store_records_expire_with_the_clock(store: DiskStore, clock: Clock) -> None:
    await store.put("k", b"value", 10)
    clock.advance(9.9)
    assert await store.get("k") == b"value"
    assert await store.count() == 1
    clock.advance(0.2)
    assert await store.get("k") is None
    assert await store.take("k") is None
    assert await store.count() == 0


async def test_a_pending_login_expires_after_login_ttl(vault: Vault, clock: Clock) -> None:
    await vault.put_login("fresh", a_login(clock))
    await vault.put_login("stale", a_login(clock))
    clock.advance(LOGIN_TTL - 1)
    assert await vault.take_login("fresh") is not None
    clock.advance(2)
    assert await vault.take_login("stale") is None


async def test_a_login_started_too_long_ago_is_not_stored(
    vault: Vault, store: DiskStore, clock: Clock
) -> None:
    record = a_login(clock)
    clock.advance(LOGIN_TTL + 1)
    await vault.put_login("late", record)
    assert await store.count() == 0
    assert await vault.take_login("late") is None


async def test_a_ticket_expires_after_ticket_ttl(vault: Vault, clock: Clock) -> None:
    ticket = await vault.issue_ticket("session-id", "/", browser=vault.reference("binding"))
    clock.advance(TICKET_TTL + 1)
    assert await vault.redeem_ticket(ticket) is None


async def test_a_session_ends_at_max_age_even_when_refreshed_later(
    vault: Vault, store: DiskStore, clock: Clock
) -> None:
    session_id = await vault.create(a_session())
    session_hash = vault.reference(session_id)
    clock.advance(MAX_AGE - 100)
    # A refresh late in the session's life saves it again...
    async with vault.modify(session_hash) as stored:
        assert stored is not None
        stored.access_token = "access-secret-2"
        stored.refresh_token = "refresh-secret-2"
    loaded = await vault.load(session_hash)
    assert loaded is not None
    assert loaded.access_token == "access-secret-2"
    # ...but does not push its end: SESSION_MAX_AGE counts from the sign-in.
    clock.advance(99)
    assert await vault.load(session_hash) is not None
    clock.advance(2)
    assert await vault.load(session_hash) is None
    assert await store.count() == 0  # the file went with it


async def test_saving_an_ended_session_removes_it(vault: Vault, store: DiskStore) -> None:
    session_id = await vault.create(a_session())
    async with vault.modify(vault.reference(session_id)) as stored:
        assert stored is not None
        stored.access_token = ""  # how invalid_grant ends a session
    assert await vault.load(vault.reference(session_id)) is None
    assert await store.count() == 0


# --- at rest ------------------------------------------------------------------------------------


async def test_stored_bytes_hold_no_secret_in_clear(
    vault: Vault, folder: Path, clock: Clock
) -> None:
    session_id = await vault.create(a_session())
    login = a_login(clock)
    await vault.put_login(login.login.state, login)
    ticket = await vault.issue_ticket(session_id, "/", browser=vault.reference("binding"))
    files = files_in(folder)
    assert len(files) == 3
    secrets = [
        "access-secret-1",
        "refresh-secret-1",
        "id-token-secret",
        "alice@example.test",
        session_id,
        vault.reference(session_id),
        login.login.state,
        login.login.nonce,
        login.login.code_verifier,
        ticket,
        vault.reference(ticket),
    ]
    for path in files:
        raw = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, secret
            assert secret not in path.name


async def test_files_are_owner_only_in_an_owner_only_folder(
    vault: Vault, folder: Path, clock: Clock
) -> None:
    await vault.create(a_session())
    await vault.put_login("handle", a_login(clock))
    assert mode_of(folder) == 0o700
    files = files_in(folder)
    assert files
    for path in files:
        assert mode_of(path) == 0o600


def test_a_loose_existing_folder_is_tightened(tmp_path: Path) -> None:
    folder = tmp_path / "loose"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    DiskStore(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


async def test_a_record_sealed_with_another_key_is_ignored(
    store: DiskStore, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    old = Vault(store, Fernet.generate_key(), max_age=MAX_AGE, clock=clock)
    session_id = await old.create(a_session())
    await old.put_login("handle", a_login(clock))
    ticket = await old.issue_ticket(session_id, "/", browser=old.reference("binding"))
    new = Vault(store, Fernet.generate_key(), max_age=MAX_AGE, clock=clock)
    # References rotate with the key: the new vault's own look-ups find nothing.
    assert new.reference(session_id) != old.reference(session_id)
    assert await new.load(new.reference(session_id)) is None
    assert await new.take_login("handle") is None
    assert await new.redeem_ticket(ticket) is None
    # Under the old references the records are found, and cannot be opened.
    old_hash = old.reference(session_id)
    with caplog.at_level(logging.WARNING, logger=session.__name__):
        assert await new.load(old_hash) is None
        async with new.modify(old_hash) as stored:
            assert stored is None
        assert await new.end(old_hash) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert all("could not be decrypted" in r.getMessage() for r in warnings)


async def test_a_corrupt_file_is_ignored(
    vault: Vault, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await vault.create(a_session())
    [path] = files_in(folder)
    expiry, _, _ = path.read_bytes().partition(b"\n")
    path.write_bytes(expiry + b"\nnot a fernet token")
    with caplog.at_level(logging.WARNING, logger=session.__name__):
        assert await vault.load(vault.reference(session_id)) is None
    assert "could not be decrypted" in caplog.text


# --- one writer per session ------------------------------------------------------------------


async def test_modify_lets_one_writer_in_at_a_time(vault: Vault) -> None:
    session_hash = vault.reference(await vault.create(a_session(tabs=[])))
    inside = 0
    most = 0

    async def add_tab(name: str) -> None:
        nonlocal inside, most
        async with vault.modify(session_hash) as stored:
            assert stored is not None
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            stored.tabs = [*stored.tabs, name]
            inside -= 1

    await asyncio.gather(*(add_tab(f"tab-{n}") for n in range(5)))
    assert most == 1
    stored = await vault.load(session_hash)
    assert stored is not None
    assert sorted(stored.tabs) == [f"tab-{n}" for n in range(5)]


async def test_a_writer_arriving_as_the_lock_is_handed_over_still_waits(vault: Vault) -> None:
    session_hash = vault.reference(await vault.create(a_session(tabs=[])))
    inside = 0
    most = 0

    async def write(name: str) -> None:
        nonlocal inside, most
        async with vault.modify(session_hash) as stored:
            assert stored is not None
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            stored.tabs = [*stored.tabs, name]
            inside -= 1

    async def first_then_third() -> None:
        await write("first")  # the second writer queues up meanwhile
        # Released: the second writer is woken but has not run yet. A third
        # writer (another tab's event, say) arrives right now.
        await write("third")

    await asyncio.gather(first_then_third(), write("second"))
    assert most == 1
    stored = await vault.load(session_hash)
    assert stored is not None
    assert sorted(stored.tabs) == ["first", "second", "third"]


# --- the index by sid and sub (back-channel logout) ----------------------------------


async def test_sessions_are_found_by_sid_and_by_sub(vault: Vault) -> None:
    def of(sub: str, sid: str) -> ServerSession:
        return a_session(claims={"iss": "https://op.test/", "sub": sub, "sid": sid})

    first = vault.reference(await vault.create(of("alice", "sid-1")))
    second = vault.reference(await vault.create(of("alice", "sid-2")))
    other = vault.reference(await vault.create(of("bob", "sid-3")))
    issuer = "https://op.test/"
    assert await vault.sessions_of(issuer, sid="sid-1", sub=None) == [first]
    assert await vault.sessions_of(issuer, sid="sid-1", sub="alice") == [first]
    assert await vault.sessions_of(issuer, sid="sid-1", sub="bob") == []  # sid of another
    assert sorted(await vault.sessions_of(issuer, sid=None, sub="alice")) == sorted([first, second])
    assert await vault.sessions_of(issuer, sid=None, sub="bob") == [other]
    assert await vault.sessions_of("https://other.test/", sid=None, sub="alice") == []
    await vault.end(first)
    assert await vault.sessions_of(issuer, sid=None, sub="alice") == [second]


async def test_a_jti_is_used_once(vault: Vault, clock: Clock) -> None:
    assert not await vault.seen("https://op.test/", "jti-1")
    assert await vault.first_use("https://op.test/", "jti-1", 600)
    assert await vault.seen("https://op.test/", "jti-1")
    assert not await vault.seen("https://other.test/", "jti-1")
    assert not await vault.first_use("https://op.test/", "jti-1", 600)
    assert await vault.first_use("https://other.test/", "jti-1", 600)
    clock.now += 601
    assert await vault.first_use("https://op.test/", "jti-1", 600)  # remembered 600 s
