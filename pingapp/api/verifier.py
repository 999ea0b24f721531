"""Access-token verification: `TokenVerifier` checks a token's claims (docs/security.md
items 1-8) and keeps verified tokens in a bounded cache.

The issuer's metadata comes from its discovery document (`pingapp.oidc.discovery`:
`issuer` exactly ours, https endpoints only), its keys from a `pingapp.core.keys.KeyStore`
on its `jwks_uri`; in the app both are the ones the sign-in uses.
Outbound calls go through the HTTP client the verifier is given (in the app, the
process's shared client). A verifier built without one, as a reusable module
outside pingapp would, opens its own small client and closes it in `aclose()`.

Verified tokens are cached by their exact string until their `exp` (bounded;
failures are never cached). An entry counts only while the key store still
holds the very key that verified it and that key set is younger than its
`max_age` (docs/security.md item 37); otherwise the token is verified in full again.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import httpx2
from jwt import PyJWK

from pingapp.api.jws import AT_TYP, GENERIC_TYP, TokenRefused, read_header, typ_of, verified_claims
from pingapp.core.jwks import asymmetric_only
from pingapp.core.keys import AmbiguousKey, ClientSource, KeyStore, KeysUnavailable, UnknownKey
from pingapp.core.singleflight import FAILURE_COOLDOWN
from pingapp.oidc.discovery import Discovery
from pingapp.oidc.errors import LoginError
from pingapp.outbound.http import make_client


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A verified access token: its claims (read-only) and its scopes."""

    claims: Mapping[str, Any]
    scopes: frozenset[str]
    expires_at: float

    @property
    def subject(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else None


@dataclass(frozen=True, slots=True)
class _Verified:
    """A cache entry: the verified token, and the key that verified it."""

    token: AccessToken
    kid: str | None
    alg: str
    key: PyJWK


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Scopes from `scope` (a string: RFC 9068, Auth0), `scp` (a string or a list:
    Entra, Okta) and `permissions` (a list: Auth0 RBAC). Other shapes give nothing."""
    found: set[str] = set()
    scope, scp = claims.get("scope"), claims.get("scp")
    if isinstance(scope, str):
        found.update(scope.split())
    if isinstance(scp, str):
        found.update(scp.split())
    found.update(_strings(scp))
    found.update(_strings(claims.get("permissions")))
    return frozenset(found)


def _strings(value: object) -> list[str]:
    """The strings of a JSON list; anything else gives nothing."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required or name in claims:
            raise TokenRefused(f"the token has no valid '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRefused(f"the token has no valid '{name}' claim")
    return float(value)


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience.

    Metadata and keys: `discovery` and `keys`, the issuer's `Discovery` and
    `KeyStore` shared with the sign-in (`pingapp.context`), or else ones of its own:
    discovery single-flight, a failure remembered for `failure_retry` seconds
    (docs/security.md item 39); keys on the discovered `jwks_uri`, with
    `jwks_cooldown`, `jwks_max_age`, `failure_retry` and `fetch_timeout` (see `KeyStore`).

    `client`: an `httpx2.AsyncClient` or a function returning the shared one;
    None opens the verifier's own (closed by `aclose()`). `max_token_lifetime`
    (seconds, 0 = none) refuses tokens whose `exp - iat` is longer. `clock`
    and `monotonic` are injected by tests.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str] = ("RS256",),
        leeway: float = 30,
        client_id: str | None = None,
        require_at_jwt: bool = False,
        jwks_cooldown: float = 30.0,
        jwks_max_age: float = 600.0,
        failure_retry: float = FAILURE_COOLDOWN,
        fetch_timeout: float = 5.0,
        cache_size: int = 4096,
        max_token_lifetime: float = 0,
        client: ClientSource | None = None,
        discovery: Discovery | None = None,
        keys: KeyStore | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= leeway <= 60:
            msg = "leeway must be between 0 and 60 seconds"
            raise ValueError(msg)
        if max_token_lifetime < 0:
            msg = "max_token_lifetime must be 0 (no ceiling) or a number of seconds"
            raise ValueError(msg)
        self.algorithms = asymmetric_only(algorithms)
        self.issuer = issuer
        self.audience = audience
        self.leeway = float(leeway)
        self.client_id = client_id
        self.require_at_jwt = require_at_jwt
        self.failure_retry = failure_retry
        self.fetch_timeout = fetch_timeout
        self.cache_size = cache_size
        self.max_token_lifetime = float(max_token_lifetime)
        self._clock = clock
        self._client = client
        self._own_client: httpx2.AsyncClient | None = None

        #: The issuer's metadata: the app's shared `Discovery`, or one of its own.
        self.discovery = discovery or Discovery(
            self._http, issuer, failure_cooldown=failure_retry, required=(), monotonic=monotonic
        )
        if keys is None:
            keys = KeyStore(
                self.discovery.jwks_uri,
                client=self._http,
                algorithms=self.algorithms,
                cooldown=jwks_cooldown,
                max_age=jwks_max_age,
                failure_retry=failure_retry,
                fetch_timeout=fetch_timeout,
                monotonic=monotonic,
            )
        #: The issuer's keys (their `cooldown`, `max_age`, `fetches` counter).
        self.keys = keys
        self._key_changes = self.keys.changes
        self._cache: OrderedDict[str, _Verified] = OrderedDict()

    @property
    def discovery_fetches(self) -> int:
        """How many discovery documents were asked for (tests and metrics)."""
        return self.discovery.fetches

    # -- outbound: discovery ---------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        if self._client is not None:
            return self._client() if callable(self._client) else self._client
        if self._own_client is None:
            self._own_client = make_client(timeout=httpx2.Timeout(self.fetch_timeout))
        return self._own_client

    async def aclose(self) -> None:
        """Close the HTTP client this verifier opened (not one it was given)."""
        if self._own_client is not None:
            await self._own_client.aclose()
            self._own_client = None

    async def discover(self) -> dict[str, Any]:
        """The issuer's metadata (`ValueError` if it cannot be used).

        Its `issuer` must match exactly and its endpoints must be https
        (`pingapp.oidc.discovery.check_metadata`). One fetch at a time; a failure is
        given again without a fetch for the discovery's failure cooldown.
        """
        try:
            return await self.discovery.get()
        except LoginError as problem:
            raise ValueError(problem.detail) from None

    async def _key(self, kid: str | None, alg: str) -> PyJWK:
        try:
            return await self.keys.key(kid, alg)
        except KeysUnavailable:
            raise TokenRefused("the issuer's keys are not available") from None
        except AmbiguousKey:
            raise TokenRefused("the token names no key and the issuer has several") from None
        except UnknownKey:
            raise TokenRefused("the token is not signed by a key of the issuer") from None

    # -- the verified-token cache ----------------------------------------------

    def _drop_withdrawn(self) -> None:
        """After a key-set change: forget the tokens of keys we no longer hold."""
        current = self.keys.current
        for token, entry in list(self._cache.items()):
            if current(entry.kid, entry.alg) is not entry.key:
                del self._cache[token]

    def _remember(self, token: str, entry: _Verified, now: float) -> None:
        trusted = self.keys.holds(entry.kid, entry.alg, entry.key)
        if self.cache_size <= 0 or entry.token.expires_at <= now or not trusted:
            return
        self._cache[token] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- the check -------------------------------------------------------------

    async def verify(self, token: str) -> AccessToken:
        """The verified token, or `TokenRefused` saying why (never the token)."""
        now = self._clock()
        if self._key_changes != self.keys.changes:
            self._key_changes = self.keys.changes
            self._drop_withdrawn()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.token.expires_at > now and self.keys.holds(
                cached.kid, cached.alg, cached.key
            ):
                return cached.token
            # Expired, its key withdrawn, or keys too old to vouch for it:
            # verify in full (which also refetches old keys).
            del self._cache[token]

        header = read_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenRefused("the token's algorithm is not allowed")
        typ = typ_of(header)
        if typ != AT_TYP and (self.require_at_jwt or typ not in (None, GENERIC_TYP)):
            raise TokenRefused("the token is not an access token")
        kid = header.get("kid")
        key = await self._key(kid, alg)
        claims = verified_claims(token, header, key)
        expires_at = self._check_claims(claims, now)
        verified = AccessToken(
            claims=MappingProxyType(claims), scopes=scopes_of(claims), expires_at=expires_at
        )
        self._remember(token, _Verified(verified, kid, alg, key), now)
        return verified

    def _check_claims(self, claims: Mapping[str, Any], now: float) -> float:
        """Check iss, aud, exp, nbf, iat; return exp."""
        if claims.get("iss") != self.issuer:
            raise TokenRefused("the token comes from another issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or self.audience not in audiences:
            raise TokenRefused("the token is not meant for this API")
        if self.client_id is not None and self.client_id in audiences:
            raise TokenRefused("the token is not an access token")
        exp = _number(claims, "exp", required=True)
        assert exp is not None
        if exp <= now - self.leeway:
            raise TokenRefused("the token has expired")
        nbf = _number(claims, "nbf", required=False)
        if nbf is not None and nbf > now + self.leeway:
            raise TokenRefused("the token is not valid yet")
        iat = _number(claims, "iat", required=False)
        if iat is not None and iat > now + self.leeway:
            raise TokenRefused("the token was issued in the future")
        if self.max_token_lifetime:
            # Without iat the lifetime counts from nbf, or else from now.
            start = iat if iat is not None else (nbf if nbf is not None else now)
            if exp - start > self.max_token_lifetime:
                raise TokenRefused("the token lives longer than this API accepts")
        return exp
