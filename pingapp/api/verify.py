"""Access-token verification for the protected API, as FastAPI dependencies.

Use it in any route::

    from pingapp.api.verify import AccessToken, Claims, require_scopes

    @router.get("/me")
    async def me(token: Claims) -> dict: ...              # any valid access token

    @router.get("/messages")
    async def messages(
        token: Annotated[AccessToken, require_scopes("read:messages")],
    ) -> dict: ...                                          # plus a scope

What is checked (SECURITY.md, items 1-10): the `Authorization: Bearer` header
only; the algorithm against the allowlist; the key only from the issuer's
`jwks_uri` found by discovery (the header's `kid` is a lookup key, `jku`/`x5u`/
`jwk`/`x5c` are never read); the signature (PyJWT's algorithm objects); `iss`
exactly; `aud` (string or list) containing the API identifier; `exp` required,
`nbf`/`iat` honoured with the configured leeway; ID tokens refused; then the
scopes from `scope`, `scp` and Auth0's `permissions`.

Why the token is parsed here and not by `jwt.decode`: PyJWT's decode costs about
80 us a call on this machine, of which 50 us is its character-by-character
base64 check, and the kid lookup would parse the token a second time. One strict
regular expression does the same check; then PyJWT's algorithm object verifies
the signature with the key PyJWT built from the JWKS. Verified tokens are cached
by their exact string until their `exp` (bounded; failures are never cached),
and a cached token counts only while the key that verified it is still the
issuer's and the key set is younger than `jwks_max_age` (SECURITY.md item 37).
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security.base import SecurityBase
from jwt import PyJWK

from pingapp.api import errors
from pingapp.auth.oidc import LoginError, check_metadata
from pingapp.http import NoCookieJar
from pingapp.keys import AmbiguousKey, KeyStore, KeysUnavailable, UnknownKey
from pingapp.singleflight import SingleFlight

log = logging.getLogger(__name__)

#: Tokens longer than this are refused before any parsing (a generous bound:
#: Auth0 tokens with many permissions stay well under 8 KiB).
MAX_TOKEN_LENGTH = 16 * 1024

#: RFC 6750 section 2.1 `b64token`, the only token syntax a Bearer header allows.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: A compact JWS: three base64url segments without padding.
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")

#: `typ` values an access token may carry (RFC 9068 section 2.1), lower case
#: and without `application/`. Anything else (`id_token+jwt`, `logout+jwt`...)
#: is another kind of token.
_AT_TYP = "at+jwt"
_GENERIC_TYP = "jwt"


class NotConfigured(RuntimeError):
    """The API cannot verify any token with the current configuration."""


class TokenRefused(Exception):
    """Why a token was refused; the text is fixed and never contains the token."""


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
    """A cache entry: the verified token, and the key that verified it (the
    entry counts only while that very key object is still the issuer's)."""

    token: AccessToken
    kid: str | None
    alg: str
    key: PyJWK


_BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTET = {character: value for value, character in enumerate(_BASE64URL)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")


def _b64decode(segment: str) -> bytes:
    """Decode one base64url segment that `_COMPACT_JWS` already checked.

    Only the canonical spelling is accepted: the unused low bits of the last
    character must be zero, so a segment cannot be altered without changing
    the bytes it stands for (the check PyJWT 2.14 added, here in O(1)).
    """
    remainder = len(segment) % 4
    if remainder == 1:
        raise TokenRefused("malformed token")
    if remainder and _SEXTET[segment[-1]] & (0x0F if remainder == 2 else 0x03):
        raise TokenRefused("malformed token")
    try:
        return binascii.a2b_base64(
            segment.encode("ascii").translate(_TO_STANDARD) + _PADDING[remainder]
        )
    except binascii.Error:
        raise TokenRefused("malformed token") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenRefused("malformed token") from None
    if not isinstance(value, dict):
        raise TokenRefused("malformed token")
    return value


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required or name in claims:
            raise TokenRefused(f"the token has no valid '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRefused(f"the token has no valid '{name}' claim")
    return float(value)


def _strings(value: object) -> list[str]:
    """The strings of a JSON list; anything else gives nothing."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


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


def _typ_of(header: Mapping[str, Any]) -> str | None:
    typ = header.get("typ")
    if typ is None:
        return None
    if not isinstance(typ, str):
        raise TokenRefused("the token's 'typ' is not valid")
    typ = typ.lower()
    return typ.removeprefix("application/")


class TokenVerifier:
    """Verifies access tokens of one issuer for one audience.

    Keys come only from the issuer's discovery document and its `jwks_uri`,
    fetched with httpx on the event loop. An unknown `kid` starts at most one
    refetch at a time; after it, no refetch for `jwks_cooldown` seconds (or
    `failure_retry` seconds after a failed fetch). A request never waits more
    than `fetch_timeout` seconds for keys. Keys older than `jwks_max_age` are
    refetched in the background, so a key the issuer withdrew stops working.
    Discovery is single-flight too, and a failed discovery is remembered for
    `failure_retry` seconds: a flood of requests while the issuer is down costs
    one outbound call per `failure_retry` (SECURITY.md item 39).

    The token cache never outlives a key: an entry is served only while the
    key that verified it is still in the key set we hold and that key set is
    younger than `jwks_max_age`; otherwise the token is verified in full again
    (and refused if its key is gone). `max_token_lifetime` (seconds, 0 = none)
    refuses tokens whose `exp - iat` is longer.
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
        failure_retry: float = 5.0,
        fetch_timeout: float = 5.0,
        cache_size: int = 4096,
        max_token_lifetime: float = 0,
        client: httpx.AsyncClient | None = None,
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
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        for name in self.algorithms:
            if name.lower() == "none" or name.upper().startswith("HS"):
                msg = f"{name} is not allowed for access tokens"
                raise ValueError(msg)
        self.leeway = float(leeway)
        self.client_id = client_id
        self.require_at_jwt = require_at_jwt
        self.failure_retry = failure_retry
        self.fetch_timeout = fetch_timeout
        self.cache_size = cache_size
        self.max_token_lifetime = float(max_token_lifetime)
        self._clock = clock
        self._monotonic = monotonic
        self._client = client
        self._owns_client = client is None

        self.metadata: dict[str, Any] | None = None
        self._cache: OrderedDict[str, _Verified] = OrderedDict()
        self._discovery: SingleFlight[dict[str, Any]] = SingleFlight(
            failure_cooldown=failure_retry, monotonic=monotonic
        )
        self.keys = (
            keys
            if keys is not None
            else KeyStore(
                self._jwks_uri,
                client=self._http,
                algorithms=self.algorithms,
                cooldown=jwks_cooldown,
                max_age=jwks_max_age,
                failure_retry=failure_retry,
                fetch_timeout=fetch_timeout,
                monotonic=monotonic,
            )
        )
        self._key_changes = self.keys.changes

    @property
    def jwks_cooldown(self) -> float:
        return self.keys.cooldown

    @property
    def jwks_max_age(self) -> float:
        return self.keys.max_age

    @property
    def jwks_fetches(self) -> int:
        """How many JWKS documents were asked for (tests and metrics)."""
        return self.keys.fetches

    @property
    def discovery_fetches(self) -> int:
        """How many discovery documents were asked for (tests and metrics)."""
        return self._discovery.fetches

    # -- outbound: discovery and JWKS ------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.fetch_timeout),
                follow_redirects=False,
                headers={"User-Agent": "pingapp-api"},
                cookies=NoCookieJar(),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this verifier opened (not one it was given)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get_json(self, url: str) -> Any:
        response = await self._http().get(url, timeout=self.fetch_timeout)
        response.raise_for_status()
        return response.json()

    async def discover(self) -> dict[str, Any]:
        """The issuer's metadata, fetched once (`ValueError` if it cannot be used).

        Its `issuer` must match exactly and its endpoints must be https
        (`pingapp.auth.oidc.check_metadata`). One fetch at a time; a failure is
        given again without a fetch for `failure_retry` seconds.
        """
        if self.metadata is None:
            self.metadata = await self._discovery.run(self.issuer, self._fetch_metadata)
        return self.metadata

    async def _fetch_metadata(self) -> dict[str, Any]:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            metadata = check_metadata(await self._get_json(url), self.issuer, url)
        except LoginError as problem:
            raise ValueError(problem.detail) from None
        if not isinstance(metadata.get("jwks_uri"), str):
            msg = f"discovery at {url} has no jwks_uri"
            raise ValueError(msg)
        return metadata

    async def _jwks_uri(self) -> str:
        return (await self.discover())["jwks_uri"]

    async def _key(self, kid: str | None, alg: str) -> PyJWK:
        try:
            return await self.keys.key(kid, alg)
        except KeysUnavailable:
            raise TokenRefused("the issuer's keys are not available") from None
        except AmbiguousKey:
            raise TokenRefused("the token names no key and the issuer has several") from None
        except UnknownKey:
            raise TokenRefused("the token is not signed by a key of the issuer") from None

    # -- the verified-token cache -----------------------------------------

    def _trusted(self, entry: _Verified) -> bool:
        """A cache entry counts while the key store still holds the very key that
        verified it (not withdrawn, not replaced) and its key set is fresh."""
        return self.keys.holds(entry.kid, entry.alg, entry.key)

    def _drop_withdrawn(self) -> None:
        """After a key-set change: forget the tokens of keys we no longer hold."""
        current = self.keys.current
        for token, entry in list(self._cache.items()):
            if current(entry.kid, entry.alg) is not entry.key:
                del self._cache[token]

    def _remember(self, token: str, entry: _Verified, now: float) -> None:
        if self.cache_size <= 0 or entry.token.expires_at <= now or not self._trusted(entry):
            return
        self._cache[token] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- the check --------------------------------------------------------

    async def verify(self, token: str) -> AccessToken:
        """The verified token, or `TokenRefused` saying why (never the token)."""
        now = self._clock()
        if self._key_changes != self.keys.changes:
            self._key_changes = self.keys.changes
            self._drop_withdrawn()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.token.expires_at > now and self._trusted(cached):
                return cached.token
            # Expired, its key withdrawn, or keys too old to vouch for it:
            # verify in full (which also refetches old keys).
            del self._cache[token]

        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRefused("the token is too long")
        match = _COMPACT_JWS.fullmatch(token)
        if match is None:
            raise TokenRefused("malformed token")
        header_b64, payload_b64, signature_b64 = match.groups()
        header = _json_object(_b64decode(header_b64))

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenRefused("the token's algorithm is not allowed")
        if "crit" in header or "b64" in header:
            raise TokenRefused("the token uses an unsupported header extension")
        typ = _typ_of(header)
        if typ != _AT_TYP and (self.require_at_jwt or typ not in (None, _GENERIC_TYP)):
            raise TokenRefused("the token is not an access token")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRefused("malformed token")

        key = await self._key(kid, alg)
        signature = _b64decode(signature_b64)
        signing_input = token[: match.end(2)].encode("ascii")
        try:
            valid = key.Algorithm.verify(signing_input, key.key, signature)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise TokenRefused("the token's signature is not valid")

        claims = _json_object(_b64decode(payload_b64))
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


# -- FastAPI wiring -----------------------------------------------------------


def _token_from(request: Request) -> str:
    """The token of the `Authorization: Bearer` header (RFC 6750 section 2.1 only)."""
    scope = request.scope
    # Read the raw ASGI scope: this runs on every request, and building
    # Starlette's header and query objects costs more than the check itself.
    if scope.get("query_string") and "access_token" in request.query_params:
        raise errors.invalid_request(
            "Send the access token in the Authorization header, not in the URL."
        )
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if not values:
        raise errors.missing_token()
    if len(values) > 1:
        raise errors.invalid_request("Send one Authorization header.")
    scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise errors.invalid_request("Use the Bearer authorization scheme.")
    credentials = credentials.strip(" ")
    if not credentials:
        raise errors.invalid_request("The Authorization header has no token.")
    if _B64TOKEN.fullmatch(credentials) is None:
        raise errors.invalid_request("The Authorization header must hold exactly one token.")
    return credentials


@functools.cache
def default_verifier() -> TokenVerifier:
    """The process's verifier, built from the settings on first use."""
    from pingapp.settings import backend_url, get_settings

    settings = get_settings()
    if settings.auth_audience is None:
        msg = "AUTH_AUDIENCE is empty: the API cannot check which API a token is for"
        raise NotConfigured(msg)
    return TokenVerifier(
        issuer=settings.effective_issuer(backend_url()),
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        leeway=settings.auth_leeway,
        client_id=settings.auth_client_id,
        # The embedded provider issues RFC 9068 tokens (typ at+jwt); Auth0 does not.
        require_at_jwt=(
            settings.uses_embedded_provider
            if settings.auth_require_at_jwt is None
            else settings.auth_require_at_jwt
        ),
        fetch_timeout=min(settings.http_timeout, 5.0),
        cache_size=settings.auth_token_cache_size,
        max_token_lifetime=settings.auth_max_token_lifetime,
    )


def verifier_of(request: Request) -> TokenVerifier:
    """The verifier of the app serving `request` (`app.state.token_verifier`), or the default."""
    verifier = getattr(request.app.state, "token_verifier", None)
    return verifier if verifier is not None else default_verifier()


class BearerToken(SecurityBase):
    """The security dependency: verifies the token, then this instance's scopes.

    It is a `SecurityBase`, so the OpenAPI page shows the OAuth2 scheme and
    its "Authorize" button; the flow's URLs are filled in from discovery when
    the schema is served (see `pingapp.api.app`). The scopes are fixed per
    instance rather than read from FastAPI's `SecurityScopes`, which would cost
    an extra object on every request.
    """

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        self.scopes = tuple(scopes)
        self.model = OAuth2Model(
            flows=OAuthFlows(
                authorizationCode=OAuthFlowAuthorizationCode(
                    authorizationUrl="/authorize",
                    tokenUrl="/token",
                    scopes={"read:messages": "Read messages"},
                )
            ),
            description="Sign in with the configured OpenID Provider (authorization code + PKCE).",
        )
        self.scheme_name = "OAuth2"
        self.auto_error = True

    async def __call__(self, request: Request) -> AccessToken:
        token = _token_from(request)
        try:
            verifier = verifier_of(request)
        except NotConfigured as problem:
            # A configuration mistake: logged on every such request, and never a 500.
            log.error("%s", problem)
            raise errors.invalid_token("This API cannot verify access tokens.") from None
        try:
            verified = await verifier.verify(token)
        except TokenRefused as refusal:
            log.debug("access token refused: %s", refusal)
            raise errors.invalid_token(str(refusal).capitalize() + ".") from None
        if self.scopes:
            missing = [scope for scope in self.scopes if scope not in verified.scopes]
            if missing:
                raise errors.insufficient_scope(missing)
        return verified


bearer = BearerToken()

#: Any valid access token for this API.
Claims = Annotated[AccessToken, Depends(bearer)]


@functools.cache
def _bearer_with(scopes: tuple[str, ...]) -> BearerToken:
    return BearerToken(scopes)


def require_scopes(*scopes: str) -> Any:
    """A dependency: a valid access token holding every one of `scopes` (else 403).

    Use it as `token: Annotated[AccessToken, require_scopes("read:messages")]`
    or in `dependencies=[require_scopes(...)]`; the OpenAPI page lists the scopes.
    """
    return Security(_bearer_with(tuple(scopes)), scopes=list(scopes))


@contextlib.asynccontextmanager
async def verifier_lifespan() -> AsyncIterator[None]:
    """Lifespan task: close the default verifier's HTTP client at stop."""
    try:
        yield
    finally:
        if default_verifier.cache_info().currsize:
            await default_verifier().aclose()
