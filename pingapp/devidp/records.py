"""The provider's records, typed: the one place that knows the store's key space.

Each kind of record is a dataclass and a `Table` (its key prefix). `Records` puts,
gets and takes them over a `Store` (memory or Redis), as the record's fields plus
`expires_at`: when it expires on the provider's clock. A record past it reads as
absent, so every expiry the provider decides (codes, pushed requests, sign-in
transactions, sessions, consents, grants) follows the clock it was given, and tests
move that clock instead of waiting. The store's own TTL only clears records out, a
little after they expired.

Secrets (codes, tokens, session cookies, request handles, sign-in transaction ids)
are keyed by their `digest`, and the browser-binding cookie is kept only as its
digest, so a dump of the store holds none that could be used. Form tokens (CSRF) are
not kept at all: `form_token` derives them from the browser's own cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Generic, TypeVar

from pingapp.devidp.models import AuthorizationCode, IssuedToken, Subject
from pingapp.devidp.storage import Store

#: The member of every stored record that says when it expires on the provider's clock.
EXPIRES_AT = "expires_at"
#: Seconds the store keeps a record after it expired on the provider's clock.
BACKSTOP = 60

Params = list[tuple[str, str]]


def digest(secret: str) -> str:
    """What a secret is stored under: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def form_token(browser_secret: str, purpose: str, *parts: str) -> str:
    """A form's CSRF token: an HMAC keyed by this browser's binding cookie (which only
    that browser holds, HttpOnly), of what the form is for. Nothing is stored: the
    form's answer is checked by deriving it again from the cookie sent with it."""
    message = json.dumps([purpose, *parts]).encode()  # one spelling for each list
    mac = hmac.new(browser_secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _params(pairs: Any) -> Params:
    return [(str(name), str(value)) for name, value in pairs]


# -- the records -------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """A record whose presence is all it says (a revoked grant, a used nonce…)."""


@dataclass(frozen=True)
class GrantOwner:
    """Whom a grant's revocation concerns: its client, user and provider session."""

    gid: str
    client_id: str = ""
    sub: str = ""
    sid: str = ""


@dataclass(frozen=True)
class AccessRecord:
    """An access token issued, so that revoking it (or its grant) stops userinfo."""

    gid: str
    client_id: str


@dataclass(frozen=True)
class RefreshRecord:
    """A live refresh token: its grant, client, the grant's scope and subject."""

    gid: str
    client_id: str
    scope: str
    subject: Subject
    #: RFC 9449 section 5: the DPoP key a public client's refresh token is bound to.
    jkt: str = ""

    def issued(self, key: str) -> IssuedToken:
        """The token as the grants and revocation see it (`key`: its digest)."""
        kind = "refresh_token"
        return IssuedToken(key, kind, self.client_id, self.gid, self.scope, self.subject, self.jkt)


@dataclass(frozen=True)
class PushedRequest:
    """RFC 9126: an authorization request pushed to `/par`, for the client that pushed it."""

    client_id: str
    params: Params


@dataclass(frozen=True)
class Session:
    """A provider session (behind the session cookie): who signed in, when, its `sid`."""

    user: str
    auth_time: int
    sid: str = ""


@dataclass(frozen=True)
class Consent:
    """The scopes a user allowed a client."""

    scopes: list[str]


@dataclass(frozen=True)
class Transaction:
    """An authorization request parked while the user signs in or consents.

    `browser` (the digest of the browser-binding cookie) ties it to the browser that
    started it; its forms carry `form_token(cookie, "tx", tx_id)`.
    """

    params: Params
    browser: str
    client_id: str
    scopes: list[str]
    audience: str | None
    user: str | None = None
    auth_time: int | None = None
    sid: str | None = None
    force_consent: bool = False

    def signed_in(self, user: str, auth_time: int, sid: str) -> Transaction:
        return replace(self, user=user, auth_time=auth_time, sid=sid)


R = TypeVar("R")


@dataclass(frozen=True)
class Table(Generic[R]):
    """One kind of record: its key prefix and its class."""

    prefix: str
    kind: type[R]

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def encode(self, record: R) -> dict[str, Any]:
        return asdict(record)  # pyright: ignore[reportArgumentType]

    def decode(self, data: dict[str, Any]) -> R:
        values: dict[str, Any] = {}
        for item in fields(self.kind):  # pyright: ignore[reportArgumentType]
            if item.name not in data:
                continue
            value = data[item.name]
            if item.name == "subject":
                value = Subject(**value)
            elif item.name == "params":
                value = _params(value)
            values[item.name] = value
        return self.kind(**values)


#: by code digest
CODES = Table("code", AuthorizationCode)
#: by code digest: a redeemed code, so that a replay revokes its grant
USED_CODES = Table("used_code", GrantOwner)
#: by grant id
REVOKED_GRANTS = Table("revoked", Marker)
#: by access-token digest
ACCESS_TOKENS = Table("at", AccessRecord)
#: by refresh-token digest
REFRESH_TOKENS = Table("rt", RefreshRecord)
#: by refresh-token digest: a rotated refresh token, so that reuse revokes its grant
USED_REFRESH_TOKENS = Table("used_rt", GrantOwner)
#: by client id and nonce digest: nonces already in an ID token
NONCES = Table("nonce", Marker)
#: by session id (`sid`) and client id: a client that got tokens in that session
SESSION_CLIENTS = Table("sess_client", Marker)
#: by request-handle digest
PUSHED_REQUESTS = Table("par", PushedRequest)
#: by session-cookie digest
SESSIONS = Table("sess", Session)
#: by user name and client id
CONSENTS = Table("consent", Consent)
#: by transaction-id digest (the `tx` of the sign-in and consent pages)
TRANSACTIONS = Table("tx", Transaction)
#: by digest of a DPoP proof's key thumbprint and `jti`: a proof already used
DPOP_PROOFS = Table("dpop_jti", Marker)


def counter_key(kind: str, bucket: str, window: int) -> str:
    """The sign-in throttle's counter of failures for one bucket in one window."""
    return f"throttle:{kind}:{bucket}:{window}"


@dataclass(frozen=True)
class Stored(Generic[R]):
    """A record as read, expired or not."""

    record: R
    expires_at: float


class Records:
    """Typed records over a `Store`, expiring on `clock`."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def put(self, table: Table[R], record: R, *key: str, ttl: int) -> None:
        """Keep `record` for `ttl` seconds of the clock, replacing what was there."""
        data = {**table.encode(record), EXPIRES_AT: self.clock() + ttl}
        self.store.put(table.key(*key), data, ttl + BACKSTOP)

    def read(self, table: Table[R], *key: str, remove: bool) -> Stored[R] | None:
        """The record under `key` even if expired (`remove`: taken, atomically)."""
        name = table.key(*key)
        data = self.store.take(name) if remove else self.store.get(name)
        if data is None:
            return None
        try:
            return Stored(table.decode(data), float(data[EXPIRES_AT]))
        except (KeyError, TypeError, ValueError):
            return None  # another layout (kept in Redis by an older version): absent

    def live(self, stored: Stored[R] | None) -> R | None:
        if stored is None or stored.expires_at <= self.clock():
            return None
        return stored.record

    def get(self, table: Table[R], *key: str) -> R | None:
        return self.live(self.read(table, *key, remove=False))

    def take(self, table: Table[R], *key: str) -> R | None:
        """Read and delete in one step: of two concurrent callers one gets None."""
        return self.live(self.read(table, *key, remove=True))

    def has(self, table: Table[R], *key: str) -> bool:
        return self.get(table, *key) is not None

    def first_use(self, table: Table[R], *key: str, ttl: int) -> bool:
        """Record `key` for `ttl` seconds unless it is there already, atomically (the
        store's counter): whether this was the first time. Expires on the store's own
        clock, so it suits what another check already bounds in time (a DPoP `jti`)."""
        return self.store.add(table.key(*key), ttl) == 1

    def delete(self, table: Table[R], *key: str) -> None:
        self.store.delete(table.key(*key))
