"""Server-side sign-in records: sessions, pending logins and one-time tickets.

- A **session** holds the tokens of one sign-in. The browser holds only its id, in
  an HttpOnly cookie; the store is keyed by a keyed digest of the id
  (`Vault.reference`: HMAC-SHA256 under a key derived from the encryption key), and
  a browser tab's state keeps only that (`session_hash`). Neither a tab's Reflex
  client token nor a store key read from Redis or a file is a credential
  (docs/security.md 25, 45).
- A **pending login** (`LoginRecord`) holds PKCE verifier, state and nonce between the provider's
  redirect and the callback, bound to the browser that started it by a hash of its
  login cookie (docs/security.md 31).
- A **ticket** lets that same browser fetch its session cookie over HTTP once.

Every record is encrypted (Fernet: AES-128-CBC with HMAC-SHA256) before it reaches
the store, with SESSION_ENCRYPTION_KEY or a key generated once into an owner-only
file (docs/security.md 34). Sessions end at SESSION_MAX_AGE whatever their refreshes.

A session also records what the sessions list shows of it (docs/sessions.md): the
browser's User-Agent and the coarse client address at sign-in, and when it was last
used (written at most once every LAST_USED_INTERVAL seconds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from pingapp.oidc.cookies import new_secret
from pingapp.oidc.login import PendingLogin
from pingapp.oidc.store import DiskStore, RedisStore, Store
from pingapp.settings import ConfigurationError, Settings

logger = logging.getLogger(__name__)

#: How long a login may take, from Log In to the callback; one not finished by then
#: must start again.
LOGIN_TTL = 600.0
#: How long a one-time ticket that binds a new session to the browser lives.
TICKET_TTL = 60.0
#: How many sessions one user (or one provider session) is indexed with.
INDEX_LIMIT = 50
#: A session's `last_used` is written at most once in this many seconds.
LAST_USED_INTERVAL = 60.0
#: Sessions whose last write of `last_used` one process remembers (then it forgets all).
TOUCHED_LIMIT = 10_000
#: The generated key (git-ignored), when SESSION_ENCRYPTION_KEY is not set.
KEY_FILE = Path(".keys") / "session.key"


@dataclasses.dataclass
class ServerSession:
    """One sign-in: tokens and what the page may show of them."""

    access_token: str = ""
    refresh_token: str = ""
    id_token: str = ""
    #: Epoch seconds at which the access token expires (0: unknown).
    expires_at: float = 0.0
    scope: str = ""
    claims: dict[str, Any] = dataclasses.field(default_factory=dict)
    profile: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Reflex client tokens (browser tabs) showing this session, to sign out together.
    tabs: list[str] = dataclasses.field(default_factory=list)
    #: Epoch seconds of the sign-in; the session ends SESSION_MAX_AGE after it.
    created_at: float = 0.0
    #: This sign-in's DPoP private key (`DPoPKey.to_json`; a secret), or '' (AUTH_DPOP).
    dpop_key: str = ""
    #: The key's thumbprint when the access token is bound to it (`cnf.jkt`), else ''.
    dpop_jkt: str = ""
    #: The User-Agent of the browser that took the session cookie (`devices.clean_agent`).
    user_agent: str = ""
    #: That browser's network (`devices.coarse_address`: IPv4 /24, IPv6 /48), or ''.
    address: str = ""
    #: Epoch seconds the session was last used (page load, token look-up), paced.
    last_used: float = 0.0


@dataclasses.dataclass
class LoginRecord:
    """A login between Log In and the callback."""

    login: PendingLogin
    #: `Vault.reference` of the login cookie of the browser that started it.
    browser: str = ""
    #: The DPoP key made for this sign-in (`DPoPKey.to_json`; a secret), or ''.
    dpop_key: str = ""
    #: The sign-in's trace (`pingapp.telemetry.carrier`: a W3C traceparent), or ''.
    trace: str = ""


@dataclasses.dataclass
class BindTicket:
    """A one-time handle that lets the browser that signed in fetch its cookie."""

    session_id: str
    return_to: str
    browser: str
    #: The sign-in's trace (`pingapp.telemetry.carrier`), or ''.
    trace: str = ""


def _load_or_make_key(path: Path) -> bytes:
    """The generated key: made once, owner-only (mode 0600 in a 0700 folder)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            msg = f"pingapp: {path} is readable by others; run: chmod 600 {path}"
            raise ConfigurationError(msg) from None
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def session_key(settings: Settings) -> bytes:
    """The key that encrypts sessions: SESSION_ENCRYPTION_KEY (checked by the
    settings), else the generated key file, which must hold a Fernet key."""
    if settings.session_encryption_key:
        return settings.session_encryption_key.get_secret_value().encode()
    try:
        key = _load_or_make_key(KEY_FILE)
    except OSError as error:
        msg = f"pingapp: cannot read or make the session key {KEY_FILE}: {error.strerror}"
        raise ConfigurationError(msg) from None
    try:
        Fernet(key)
    except ValueError:
        msg = (
            f"pingapp: {KEY_FILE} does not hold a session key. Delete it to have a new "
            "one made (everyone is signed out), or set SESSION_ENCRYPTION_KEY."
        )
        raise ConfigurationError(msg) from None
    return key


class Vault:
    """Sessions, pending logins and tickets, encrypted, in one store."""

    def __init__(
        self,
        store: Store,
        key: bytes,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._fernet = Fernet(key)
        # References rotate with the encryption key: a new key ends every session.
        self._mac_key = hmac.new(key, b"pingapp store references", hashlib.sha256).digest()
        # A session is read on every event and ping, and changes far less often: the
        # plaintext of the last records read is kept, by their (unique) ciphertext.
        self._decrypt = functools.lru_cache(maxsize=1024)(self._fernet.decrypt)
        self.max_age = max_age
        self._clock = clock
        #: When this process last wrote (or saw written) each session's `last_used`.
        self._touched: dict[str, float] = {}

    # --- encoding ------------------------------------------------------------------

    def reference(self, secret: str) -> str:
        """The keyed digest of a secret (a cookie, a handle): what the store and the
        tab states keep instead of it. Without the server's key nobody can make
        one, so a reference read from a store is not something a request can
        present (docs/security.md 45)."""
        return hmac.new(self._mac_key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, reference: str) -> bool:
        """Whether `secret` has this `reference`, compared in constant time."""
        return bool(secret and reference) and hmac.compare_digest(self.reference(secret), reference)

    def _seal(self, record: object) -> bytes:
        return self._fernet.encrypt(json.dumps(dataclasses.asdict(record)).encode())  # type: ignore[arg-type]

    def _open(self, sealed: bytes | None) -> dict[str, Any] | None:
        if sealed is None:
            return None
        try:
            return json.loads(self._decrypt(sealed))
        except (InvalidToken, ValueError):
            logger.warning("a stored sign-in record could not be decrypted; ignored")
            return None

    # --- sessions --------------------------------------------------------------------

    def _session_ttl(self, session: ServerSession) -> float:
        return session.created_at + self.max_age - self._clock()

    async def load(self, session_hash: str) -> ServerSession | None:
        """The session stored under `session_hash`, or None (never creates one)."""
        if not session_hash:
            return None
        data = self._open(await self.store.get(f"session:{session_hash}"))
        if data is None:
            return None
        session = ServerSession(**data)
        return session if self._session_ttl(session) > 0 and session.access_token else None

    async def create(self, session: ServerSession) -> str:
        """Store a new session; its id (for the cookie) is returned, never stored."""
        session_id = new_secret()
        session.created_at = session.last_used = self._clock()
        await self.save(self.reference(session_id), session)
        for key in self._index_keys(session):
            await self._add_to_index(key, self.reference(session_id))
        return session_id

    async def save(self, session_hash: str, session: ServerSession) -> None:
        ttl = self._session_ttl(session)
        if ttl > 0 and session.access_token:  # a session without a token has ended
            await self.store.put(f"session:{session_hash}", self._seal(session), ttl)
        else:
            await self.store.delete(f"session:{session_hash}")

    @contextlib.asynccontextmanager
    async def modify(self, session_hash: str) -> AsyncIterator[ServerSession | None]:
        """The session, locked for writing (one writer per session, every worker);
        saved again on exit. None when there is no such session."""
        async with self.store.lock(f"session:{session_hash}"):
            session = await self.load(session_hash)
            yield session
            if session is not None:
                await self.save(session_hash, session)

    async def touch(self, session_hash: str, seen: ServerSession | None = None) -> bool:
        """Record that the session was used now, at most once per LAST_USED_INTERVAL:
        within it, no write (and, once this process knows the time, no read either).
        `seen`: the session as just loaded, if the caller has it. Whether it wrote."""
        now = self._clock()
        written = self._touched.get(session_hash, -math.inf)
        if not session_hash or now - written < LAST_USED_INTERVAL:
            return False
        if seen is not None and now - seen.last_used < LAST_USED_INTERVAL:
            self._remember(session_hash, seen.last_used)
            return False
        async with self.store.lock(f"session:{session_hash}"):
            session = await self.load(session_hash)
            if session is None:
                return False
            if now - session.last_used < LAST_USED_INTERVAL:  # another backend wrote it
                self._remember(session_hash, session.last_used)
                return False
            session.last_used = now
            await self.save(session_hash, session)
        self._remember(session_hash, now)
        return True

    def _remember(self, session_hash: str, last_used: float) -> None:
        if len(self._touched) >= TOUCHED_LIMIT:
            self._touched.clear()
        self._touched[session_hash] = last_used

    async def end(self, session_hash: str) -> ServerSession | None:
        """Remove the session; return what it held (None if there was none)."""
        if not session_hash:
            return None
        data = self._open(await self.store.take(f"session:{session_hash}"))
        return ServerSession(**data) if data else None

    # --- the index by provider session (`sid`) and user (`sub`), for back-channel logout

    def _index_keys(self, session: ServerSession) -> list[str]:
        issuer, sid, sub = (session.claims.get(name) for name in ("iss", "sid", "sub"))
        keys = [f"sub:{self.reference(f'{issuer} {sub}')}"] if sub else []
        return [*keys, f"sid:{self.reference(f'{issuer} {sid}')}"] if sid else keys

    async def _add_to_index(self, key: str, session_hash: str) -> None:
        async with self.store.lock(key):
            listed = self._open_list(await self.store.get(key))
            # A user has a few sessions; older entries of ended ones fall off.
            listed = [*[h for h in listed if h != session_hash][-(INDEX_LIMIT - 1) :], session_hash]
            await self.store.put(
                key, self._fernet.encrypt(json.dumps(listed).encode()), self.max_age
            )

    def _open_list(self, sealed: bytes | None) -> list[str]:
        if sealed is None:
            return []
        try:
            listed = json.loads(self._decrypt(sealed))
        except (InvalidToken, ValueError):
            return []
        return [h for h in listed if isinstance(h, str)] if isinstance(listed, list) else []

    async def sessions_of(self, issuer: str, *, sid: str | None, sub: str | None) -> list[str]:
        """The hashes of the live sessions a Logout Token names: by `sid` when it has
        one (and then of that `sub` only, if it names one too), else every session
        of `sub`. Two look-ups at most, whatever the number of sessions."""
        if sid:
            key = f"sid:{self.reference(f'{issuer} {sid}')}"
        elif sub:
            key = f"sub:{self.reference(f'{issuer} {sub}')}"
        else:
            return []
        found = []
        for session_hash in self._open_list(await self.store.get(key)):
            session = await self.load(session_hash)
            if session is not None and (not sub or session.claims.get("sub") == sub):
                found.append(session_hash)
        return found

    def _jti_key(self, issuer: str, jti: str) -> str:
        return f"jti:{self.reference(f'{issuer} {jti}')}"

    async def seen(self, issuer: str, jti: str) -> bool:
        """Whether the token `jti` of `issuer` was recorded (`first_use`)."""
        return await self.store.get(self._jti_key(issuer, jti)) is not None

    async def first_use(self, issuer: str, jti: str, ttl: float) -> bool:
        """Record the token `jti` of `issuer`; whether it was not recorded already."""
        return await self.store.put_new(self._jti_key(issuer, jti), b"1", ttl)

    # --- logins and tickets --------------------------------------------------------------

    async def put_login(self, handle: str, record: LoginRecord) -> None:
        """Keep a pending login under a one-time `handle` (a secret or a state)."""
        remaining = record.login.started_at + LOGIN_TTL - self._clock()
        if remaining > 0:
            await self.store.put(f"login:{self.reference(handle)}", self._seal(record), remaining)

    async def take_login(self, handle: str) -> LoginRecord | None:
        """The pending login, once; None when unknown, used or expired."""
        if not handle or len(handle) > 200:
            return None
        data = self._open(await self.store.take(f"login:{self.reference(handle)}"))
        if data is None:
            return None
        return LoginRecord(**{**data, "login": PendingLogin(**data["login"])})

    async def issue_ticket(
        self, session_id: str, return_to: str, browser: str, trace: str = ""
    ) -> str:
        ticket = new_secret()
        record = BindTicket(
            session_id=session_id, return_to=return_to, browser=browser, trace=trace
        )
        await self.store.put(f"ticket:{self.reference(ticket)}", self._seal(record), TICKET_TTL)
        return ticket

    async def redeem_ticket(self, ticket: str) -> BindTicket | None:
        """The ticket's content, once: a second redemption gets None."""
        if not 20 <= len(ticket) <= 100:
            return None
        data = self._open(await self.store.take(f"ticket:{self.reference(ticket)}"))
        return BindTicket(**data) if data else None


def sessions_dir() -> Path:
    """The disk store's folder: beside Reflex's states folder (`.states-sessions`),
    not inside it, since `reflex run` empties that one at every start."""
    from reflex.utils import prerequisites

    states = prerequisites.get_states_dir()
    return states.with_name(states.name + "-sessions")


def build_vault(settings: Settings) -> Vault:
    """The vault the settings and Reflex's config describe: on Redis when Reflex
    uses it (REFLEX_REDIS_URL), else on disk beside the state files."""
    from reflex.config import get_config

    redis_url = get_config().redis_url
    store: Store = RedisStore(redis_url) if redis_url else DiskStore(sessions_dir())
    return Vault(store, session_key(settings), max_age=settings.session_max_age)
