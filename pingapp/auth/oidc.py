"""The OpenID Connect client: discovery, the authorization request, the code
exchange, ID token checks, refresh, revocation and the logout URL.

No Reflex here: plain functions over the shared httpx client, so each step can
be tested on its own. authlib builds the request parameters (PKCE, the grant
URI); PyJWT checks signatures.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from pingapp.settings import Settings, is_loopback_host, is_secure_url
from pingapp.singleflight import SingleFlight

#: How long discovery and JWKS documents are reused before being fetched again.
METADATA_TTL = 600.0
#: After a failed discovery, how long callers get that failure again without a
#: new outbound call (SECURITY.md item 39).
DISCOVERY_FAILURE_COOLDOWN = 5.0


class LoginError(Exception):
    """A sign-in step failed; `title` and `detail` are shown to the user."""

    def __init__(self, title: str, detail: str, *, code: str = "") -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.code = code


class ProviderUnavailable(LoginError):
    """The provider could not be reached or answered garbage."""


class GrantRejected(LoginError):
    """The provider refused a code or refresh token (`invalid_grant`)."""


# --- discovery and keys ---------------------------------------------------------------


@dataclasses.dataclass
class _Cached:
    value: Any
    fetched_at: float


_metadata: dict[str, _Cached] = {}
_jwks: dict[str, _Cached] = {}


async def _get_json(client: httpx.AsyncClient, url: str, what: str) -> Any:
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
    except httpx.TimeoutException:
        raise ProviderUnavailable(
            "The sign-in provider is too slow",
            f"Its {what} at {url} did not answer in time. Try again in a moment.",
        ) from None
    except httpx.TransportError:
        raise ProviderUnavailable(
            "The sign-in provider cannot be reached",
            f"Its {what} at {url} did not answer. Check that the provider is up "
            "and that AUTH_ISSUER (or AUTH0_DOMAIN) is right, then try again.",
        ) from None
    if response.status_code != 200:
        raise ProviderUnavailable(
            "The sign-in provider answered with an error",
            f"Its {what} at {url} answered {response.status_code}. "
            "Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        )
    try:
        return response.json()
    except ValueError:
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"Its {what} at {url} is not JSON. Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        ) from None


def _endpoints(document: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The metadata's endpoint fields: `jwks_uri`, every `*_endpoint`, the session
    iframe and the mTLS aliases (RFC 8705), as (name, value)."""
    found: list[tuple[str, object]] = [
        (name, value)
        for name, value in document.items()
        if name in {"jwks_uri", "check_session_iframe"} or name.endswith("_endpoint")
    ]
    aliases = document.get("mtls_endpoint_aliases")
    if isinstance(aliases, Mapping):
        found += [(f"mtls_endpoint_aliases.{name}", value) for name, value in aliases.items()]
    elif aliases is not None:
        found.append(("mtls_endpoint_aliases", aliases))
    return found


def _secure_endpoint(url: str, issuer: str) -> bool:
    """`https:`, loopback `http:`, or `http:` on the issuer's own origin (possible
    only for an issuer the settings allowed as plain http: ALLOW_INSECURE_HTTP)."""
    if is_secure_url(url):
        return True
    ours, theirs = urlsplit(issuer), urlsplit(url)
    return (
        theirs.scheme == "http"
        and ours.scheme == "http"
        and theirs.netloc.lower() == ours.netloc.lower()
        and not theirs.username
        and not is_loopback_host(ours.hostname)  # loopback is already allowed above
    )


def check_metadata(document: object, issuer: str, url: str) -> dict[str, Any]:
    """Trust a discovery document only if it names exactly `issuer` and every
    endpoint in it is `https:` (`http:` only to this machine); else `LoginError`.

    SECURITY.md item 40. The login client and the API both use it.
    """
    if not isinstance(document, dict):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"{url} is not a JSON object. Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        )
    if document.get("issuer") != issuer:
        raise LoginError(
            "The issuer does not match",
            f"The provider calls itself {document.get('issuer')!r} but the app is "
            f"configured with {issuer!r}. Set AUTH_ISSUER to exactly the provider's "
            "issuer (a trailing slash counts).",
            code="issuer_mismatch",
        )
    for name, value in _endpoints(document):
        if not isinstance(value, str) or not _secure_endpoint(value, issuer):
            raise LoginError(
                "The sign-in provider's configuration is not safe to use",
                f"{url} gives {name} as {value!r}: endpoints must be https:// "
                "(plain http:// only to this machine). Check the provider's settings.",
                code="insecure_endpoint",
            )
    return document


_discovery: SingleFlight[dict[str, Any]] = SingleFlight(failure_cooldown=DISCOVERY_FAILURE_COOLDOWN)


async def discover(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    """The provider's metadata, cached for `METADATA_TTL` seconds.

    Its `issuer` must equal ours exactly and its endpoints must be https
    (`check_metadata`). One fetch at a time per issuer; after a failure, callers
    get the same `LoginError` for `DISCOVERY_FAILURE_COOLDOWN` seconds without
    another outbound call (SECURITY.md items 39-40).
    """
    cached = _metadata.get(issuer)
    if cached and time.monotonic() - cached.fetched_at < METADATA_TTL:
        return cached.value
    return await _discovery.run(issuer, lambda: _fetch_metadata(client, issuer))


async def _fetch_metadata(client: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    document = check_metadata(await _get_json(client, url, "discovery document"), issuer, url)
    if not isinstance(document.get("authorization_endpoint"), str):
        raise ProviderUnavailable(
            "The sign-in provider's discovery document is incomplete",
            f"{url} has no authorization_endpoint. Check AUTH_ISSUER.",
        )
    _metadata[issuer] = _Cached(document, time.monotonic())
    return document


_key_sets: SingleFlight[jwt.PyJWKSet] = SingleFlight(failure_cooldown=DISCOVERY_FAILURE_COOLDOWN)


async def _fetch_key_set(client: httpx.AsyncClient, url: str) -> jwt.PyJWKSet:
    document = await _get_json(client, url, "key set")
    try:
        key_set = jwt.PyJWKSet.from_dict(document)
    except (jwt.PyJWTError, ValueError, TypeError, KeyError, AttributeError):
        raise ProviderUnavailable(
            "The sign-in provider's keys cannot be used",
            f"Its key set at {url} has no usable key. Check AUTH_ISSUER.",
        ) from None
    _jwks[url] = _Cached(key_set, time.monotonic())
    return key_set


async def signing_key(
    client: httpx.AsyncClient, metadata: Mapping[str, Any], kid: str | None, alg: str
) -> jwt.PyJWK:
    """The provider's key `kid`; an unknown kid refetches the JWKS once.

    Fetches are single-flight per key set URL, and a failed fetch is given again
    without a new call for `DISCOVERY_FAILURE_COOLDOWN` seconds (SECURITY.md 39).
    """
    url = metadata.get("jwks_uri")
    if not isinstance(url, str):
        raise ProviderUnavailable(
            "The sign-in provider has no keys", "Its metadata has no jwks_uri."
        )
    for attempt in range(2):
        cached = _jwks.get(url)
        fresh = cached is not None and time.monotonic() - cached.fetched_at < METADATA_TTL
        if cached is None or not fresh or attempt == 1:
            key_set = await _key_sets.run(url, lambda: _fetch_key_set(client, url))
        else:
            key_set = cached.value
        matches = [
            key
            for key in key_set.keys
            if (kid is None or key.key_id == kid) and key.public_key_use in (None, "sig")
        ]
        if len(matches) == 1 or (matches and kid is not None):
            return matches[0]
    raise LoginError(
        "The sign-in could not be verified",
        "The ID token is signed with a key the provider does not publish.",
        code="unknown_key",
    )


def set_failure_cooldown(seconds: float) -> None:
    """How long a failed discovery or key-set fetch is remembered (AUTH_FAILURE_COOLDOWN)."""
    _discovery.failure_cooldown = _key_sets.failure_cooldown = seconds


def clear_caches() -> None:
    """Forget discovery, keys and remembered failures (tests; a provider that changed)."""
    _metadata.clear()
    _jwks.clear()
    _discovery.forget()
    _key_sets.forget()


# --- the authorization request --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PendingLogin:
    """What the callback needs to finish a login; kept server-side only."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    return_to: str
    started_at: float
    #: Seconds: the sign-in must be at most this old (OIDC `max_age`, RFC 9470 step-up).
    max_age: int | None = None


def new_pending_login(
    redirect_uri: str, return_to: str, *, max_age: int | None = None
) -> PendingLogin:
    return PendingLogin(
        state=generate_token(43),
        nonce=generate_token(43),
        # RFC 7636: 43-128 characters from the unreserved set; 64 from a CSPRNG.
        code_verifier=generate_token(64),
        redirect_uri=redirect_uri,
        return_to=safe_return_path(return_to),
        started_at=time.time(),
        max_age=max_age,
    )


def authorization_params(
    settings: Settings, pending: PendingLogin, *, prompt: str | None = None
) -> dict[str, str]:
    """The authorization request: PKCE, state, nonce, audience, scope (and max_age)."""
    params: dict[str, str] = {
        "client_id": settings.auth_client_id,
        "response_type": "code",
        "redirect_uri": pending.redirect_uri,
        "scope": settings.auth_scope,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": create_s256_code_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
    }
    if settings.auth_audience:
        if settings.auth_audience_param in {"audience", "both"}:
            params["audience"] = settings.auth_audience
        if settings.auth_audience_param in {"resource", "both"}:
            params["resource"] = settings.auth_audience
    if prompt is None and needs_consent_prompt(settings):
        prompt = "consent"
    if prompt:
        params["prompt"] = prompt
    if pending.max_age is not None:
        params["max_age"] = str(pending.max_age)
    return params


def authorization_url(
    metadata: Mapping[str, Any],
    settings: Settings,
    pending: PendingLogin,
    *,
    prompt: str | None = None,
) -> str:
    """The provider's authorization endpoint with the whole request in its query."""
    params = authorization_params(settings, pending, prompt=prompt)
    return add_params_to_uri(metadata["authorization_endpoint"], list(params.items()))


def uses_par(metadata: Mapping[str, Any], settings: Settings) -> bool:
    """Whether to push the request first (RFC 9126): AUTH_USE_PAR, or `auto` and the
    provider advertises (or requires) it."""
    advertised = isinstance(metadata.get("pushed_authorization_request_endpoint"), str)
    if settings.auth_use_par == "false":
        return False
    if settings.auth_use_par == "true" and not advertised:
        raise LoginError(
            "The sign-in provider does not offer pushed authorization requests",
            "AUTH_USE_PAR=true, but its discovery document has no "
            "pushed_authorization_request_endpoint. Set AUTH_USE_PAR=auto.",
            code="no_par",
        )
    return advertised


async def pushed_authorization_url(
    client: httpx.AsyncClient,
    metadata: Mapping[str, Any],
    settings: Settings,
    pending: PendingLogin,
    *,
    prompt: str | None = None,
) -> str:
    """Push the request to the provider (RFC 9126) and return the authorization URL
    that carries only `client_id` and the `request_uri` it answered with: nothing
    of the request travels through the browser."""
    params = authorization_params(settings, pending, prompt=prompt)
    status, body = await _post_form(
        client,
        metadata["pushed_authorization_request_endpoint"],
        settings,
        params,
        what="pushed authorization request endpoint",
    )
    request_uri = body.get("request_uri")
    if status != 201 or "error" in body or not isinstance(request_uri, str):
        code, description = _error_of(body)
        raise LoginError(
            "The sign-in provider refused the sign-in request",
            f"{code}: {description}. Check AUTH_CLIENT_ID and the application's "
            "redirect URIs at the provider.",
            code=code,
        )
    return add_params_to_uri(
        metadata["authorization_endpoint"],
        [("client_id", settings.auth_client_id), ("request_uri", request_uri)],
    )


def needs_consent_prompt(settings: Settings) -> bool:
    """OIDC Core section 11: a provider may ignore `offline_access` (and so issue no
    refresh token) unless `prompt=consent` is sent. Auth0 and the embedded provider
    grant it without; any other provider gets the prompt."""
    wants_refresh = "offline_access" in settings.auth_scope.split()
    return wants_refresh and settings.auth_issuer is not None


def state_matches(expected: str, received: str) -> bool:
    """Compare `state` in constant time."""
    return bool(expected) and hmac.compare_digest(expected.encode(), received.encode())


def safe_return_path(value: str | None) -> str:
    """A local path starting with exactly one `/`, or `/` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(char in value for char in "\\\r\n\t") or any(ord(c) < 0x20 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


# --- the token endpoint ------------------------------------------------------------------


def _client_authentication(
    settings: Settings, form: dict[str, str]
) -> tuple[httpx.Auth | httpx._client.UseClientDefault, dict[str, str]]:
    """HTTP Basic with the secret for a confidential client; else `client_id` in the form."""
    if settings.auth_client_secret is not None:
        secret = settings.auth_client_secret.get_secret_value()
        return httpx.BasicAuth(settings.auth_client_id, secret), form
    return httpx.USE_CLIENT_DEFAULT, {**form, "client_id": settings.auth_client_id}


async def _post_form(
    client: httpx.AsyncClient,
    url: object,
    settings: Settings,
    form: dict[str, str],
    *,
    what: str,
) -> tuple[int, dict[str, Any]]:
    """POST `form` with the client's authentication; the status and the JSON body."""
    if not isinstance(url, str):
        raise ProviderUnavailable(f"The sign-in provider has no {what}", "Check AUTH_ISSUER.")
    auth, form = _client_authentication(settings, form)
    try:
        response = await client.post(
            url, data=form, auth=auth, headers={"Accept": "application/json"}
        )
    except httpx.TimeoutException:
        raise ProviderUnavailable(
            "The sign-in provider is too slow",
            f"Its {what} did not answer in time. Try again in a moment.",
        ) from None
    except httpx.TransportError:
        raise ProviderUnavailable(
            "The sign-in provider cannot be reached",
            f"Its {what} did not answer. Check that the provider is up, then try again.",
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"Its {what} answered {response.status_code} without JSON.",
        )
    return response.status_code, body


def _error_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """An OAuth error answer's `error` and `error_description` (RFC 6749 5.2)."""
    code = str(body.get("error", "server_error"))
    return code, str(body.get("error_description", "")) or "no description given"


async def _token_request(
    client: httpx.AsyncClient,
    metadata: Mapping[str, Any],
    settings: Settings,
    form: dict[str, str],
) -> dict[str, Any]:
    status, body = await _post_form(
        client, metadata.get("token_endpoint"), settings, form, what="token endpoint"
    )
    if status != 200 or "error" in body:
        code, description = _error_of(body)
        if code == "invalid_grant":
            raise GrantRejected(
                "The sign-in has expired or was already used",
                f"The provider said: {description}. Sign in again.",
                code=code,
            )
        raise LoginError(
            "The sign-in provider refused the request",
            f"{code}: {description}. Check AUTH_CLIENT_ID (and AUTH_CLIENT_SECRET, if the "
            "provider's application is confidential).",
            code=code,
        )
    if not isinstance(body.get("access_token"), str):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            "Its token response has no access_token.",
        )
    return body


async def exchange_code(
    client: httpx.AsyncClient,
    metadata: Mapping[str, Any],
    settings: Settings,
    pending: PendingLogin,
    code: str,
) -> dict[str, Any]:
    """Trade the authorization code (and PKCE verifier) for tokens."""
    return await _token_request(
        client,
        metadata,
        settings,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        },
    )


async def refresh_tokens(
    client: httpx.AsyncClient, metadata: Mapping[str, Any], settings: Settings, refresh_token: str
) -> dict[str, Any]:
    """Use a refresh token; the answer may carry a rotated one."""
    return await _token_request(
        client,
        metadata,
        settings,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


async def revoke(
    client: httpx.AsyncClient, metadata: Mapping[str, Any], settings: Settings, token: str
) -> bool:
    """Revoke a refresh token (RFC 7009) where the provider supports it."""
    url = metadata.get("revocation_endpoint")
    if not isinstance(url, str):
        return False
    auth, form = _client_authentication(
        settings, {"token": token, "token_type_hint": "refresh_token"}
    )
    try:
        response = await client.post(url, data=form, auth=auth)
    except httpx.TransportError:
        return False
    return response.status_code == 200


# --- the ID token -------------------------------------------------------------------------


async def validate_id_token(
    client: httpx.AsyncClient,
    metadata: Mapping[str, Any],
    settings: Settings,
    id_token: str,
    *,
    nonce: str | None,
    max_age: int | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Check an ID token in full (OIDC Core 3.1.3.7) and return its claims.

    With `max_age` (the login asked for one), `auth_time` is required and must be at
    most that many seconds old, give or take AUTH_LEEWAY."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError:
        raise LoginError(
            "The sign-in could not be verified", "The ID token is malformed.", code="bad_id_token"
        ) from None
    alg = header.get("alg")
    if alg not in settings.auth_algorithms:
        raise LoginError(
            "The sign-in could not be verified",
            f"The ID token is signed with {alg!r}, which AUTH_ALGORITHMS does not allow.",
            code="bad_id_token",
        )
    key = await signing_key(client, metadata, header.get("kid"), alg)
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[alg],
            audience=settings.auth_client_id,
            issuer=metadata["issuer"],
            leeway=settings.auth_leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise LoginError(
            "The sign-in could not be verified",
            f"The ID token was refused: {error}. Sign in again; if it keeps happening, "
            "check AUTH_ISSUER and AUTH_CLIENT_ID.",
            code="bad_id_token",
        ) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.auth_client_id:
        raise LoginError(
            "The sign-in could not be verified",
            "The ID token names several audiences but not this app as its authorized party.",
            code="bad_id_token",
        )
    if nonce is not None and not (
        isinstance(claims.get("nonce"), str) and hmac.compare_digest(claims["nonce"], nonce)
    ):
        raise LoginError(
            "The sign-in could not be verified",
            "The ID token does not carry this login's nonce (a replayed or foreign token). "
            "Sign in again.",
            code="bad_nonce",
        )
    if max_age is not None:
        auth_time = claims.get("auth_time")
        age = (time.time() if now is None else now) - float(auth_time or 0)
        if not isinstance(auth_time, int | float) or age > max_age + settings.auth_leeway:
            raise LoginError(
                "The sign-in was not recent enough",
                f"This needs a sign-in within the last {max_age} seconds, but the provider "
                "did not ask you to sign in again. Press Sign in again to retry.",
                code="stale_auth_time",
            )
    return claims


# --- back-channel logout ---------------------------------------------------------------

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: A Logout Token older than this (by its `iat`) is refused; its `jti` is remembered
#: at least this long, so a replay is refused either way.
LOGOUT_TOKEN_MAX_AGE = 300


class LogoutTokenRefused(Exception):
    """A Logout Token that must not end any session; the text says why (no secrets)."""


async def validate_logout_token(
    client: httpx.AsyncClient,
    metadata: Mapping[str, Any],
    settings: Settings,
    token: str,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a Logout Token in full (OIDC Back-Channel Logout 1.0, section 2.6):
    signature from the issuer's keys, `typ`, `iss`, `aud`, `iat` (recent), `exp` when
    present, `jti`, the back-channel logout event, `sid` and/or `sub`, no `nonce`.
    Returns its claims; the caller makes sure `jti` is used once."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise LogoutTokenRefused("the logout token is not a JWT") from None
    typ = header.get("typ")
    if typ is not None and str(typ).lower() not in {"logout+jwt", "application/logout+jwt"}:
        raise LogoutTokenRefused("the logout token's typ is not logout+jwt")
    alg = header.get("alg")
    if alg not in settings.auth_algorithms:
        raise LogoutTokenRefused("the logout token's algorithm is not allowed")
    try:
        key = await signing_key(client, metadata, header.get("kid"), alg)
    except LoginError:
        raise LogoutTokenRefused("no key of the issuer verifies the logout token") from None
    moment = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=settings.auth_client_id,
            issuer=metadata["issuer"],
            leeway=settings.auth_leeway,
            options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": False},
        )
    except jwt.PyJWTError as error:
        raise LogoutTokenRefused(f"the logout token was refused: {error}") from None
    iat = claims["iat"]
    if not isinstance(iat, int | float) or not (
        moment - LOGOUT_TOKEN_MAX_AGE - settings.auth_leeway <= iat <= moment + settings.auth_leeway
    ):
        raise LogoutTokenRefused("the logout token's iat is too old or in the future")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise LogoutTokenRefused("the logout token has no back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenRefused("a logout token must not carry a nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not (isinstance(sid, str) and sid) and not (isinstance(sub, str) and sub):
        raise LogoutTokenRefused("the logout token names neither sid nor sub")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise LogoutTokenRefused("the logout token's jti is not a string")
    return claims


# --- logout --------------------------------------------------------------------------------


def logout_url(
    metadata: Mapping[str, Any],
    settings: Settings,
    *,
    logout_hint: str | None,
    return_to: str,
    state: str | None = None,
) -> str | None:
    """Where to send the browser to end the provider's session, if anywhere.

    OpenID Connect RP-Initiated Logout 1.0 at the provider's `end_session_endpoint`:
    `client_id` names this app, `logout_hint` (the user's `sub`, when the caller
    knows it) names the user, `post_logout_redirect_uri` is `return_to` (registered
    at the provider), and `state`, if given, comes back with the browser. The ID
    token is never put in this URL: it would sit in the address bar, the history
    and the provider's access logs (SECURITY.md items 19 and 24).

    Auth0 tenants whose discovery has no `end_session_endpoint` get Auth0's own
    `/v2/logout?client_id=...&returnTo=...`. Any other provider without one: None.
    """
    end_session = metadata.get("end_session_endpoint")
    if isinstance(end_session, str):
        params = {"client_id": settings.auth_client_id, "post_logout_redirect_uri": return_to}
        if logout_hint:
            params["logout_hint"] = logout_hint
        if state:
            params["state"] = state
        separator = "&" if urlsplit(end_session).query else "?"
        return f"{end_session}{separator}{urlencode(params)}"
    if settings.auth0_domain:
        # Auth0 tenants without RP-initiated logout enabled in discovery.
        query = urlencode({"client_id": settings.auth_client_id, "returnTo": return_to})
        return f"https://{settings.auth0_domain}/v2/logout?{query}"
    return None


async def reachable(client: httpx.AsyncClient, url: str) -> bool:
    """Whether the provider answers at `url` at all (any HTTP status will do).

    Only the endpoint is asked, without the query, so the probe itself ends nothing.
    """
    try:
        await client.head(url.partition("?")[0])
    except httpx.HTTPError:
        return False
    return True


# --- provider errors on the callback ------------------------------------------------------

_PROVIDER_ERRORS = {
    "access_denied": (
        "Sign-in was cancelled",
        "You declined, or the provider refused, access for this app. Press Log In to try again.",
    ),
    "login_required": (
        "Please sign in",
        "The provider needs you to sign in again. Press Log In to continue.",
    ),
    "consent_required": (
        "Your consent is needed",
        "The provider needs you to approve this app's access. Press Log In to continue.",
    ),
    "interaction_required": (
        "Please sign in",
        "The provider needs you to interact with it. Press Log In to continue.",
    ),
    "invalid_scope": (
        "The requested permissions are not available",
        "The provider refused the scope in AUTH_SCOPE. Check the API's permissions "
        "at the provider.",
    ),
    "invalid_target": (
        "The API is unknown to the provider",
        "The provider does not know AUTH_AUDIENCE. Create the API at the provider, or set "
        "AUTH_AUDIENCE to its identifier.",
    ),
}


def describe_provider_error(code: str, description: str) -> LoginError:
    """A provider's `error` on the callback, in words with a way forward."""
    title, detail = _PROVIDER_ERRORS.get(
        code,
        ("The sign-in provider reported an error", "Press Log In to try again."),
    )
    if description:
        detail = f"{detail} (The provider said: {description[:200]})"
    return LoginError(title, detail, code=code)


async def fetch_userinfo(
    client: httpx.AsyncClient, metadata: Mapping[str, Any], access_token: str
) -> dict[str, Any]:
    """The provider's profile of the user (the tutorial's Profile page), or {}."""
    url = metadata.get("userinfo_endpoint")
    if not isinstance(url, str):
        return {}
    try:
        response = await client.get(url, headers={"Authorization": f"Bearer {access_token}"})
        body = response.json() if response.status_code == 200 else None
    except (httpx.TransportError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A JWT's header and claims for display only (no checks: the API verifies);
    None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header, claims = (
            json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
            for part in parts[:2]
        )
    except ValueError:
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims
