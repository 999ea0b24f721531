"""Checks of the tokens the provider sends this app: the ID token (OIDC Core
3.1.3.7) and the back-channel Logout Token (OIDC Back-Channel Logout 1.0, 2.6).

Plain functions over a key look-up (`KeyLookup`: the issuer's key for a `kid`
and `alg`), so each check can be tested with keys the test makes.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from pingapp.oidc.errors import LoginError, LogoutTokenRefused, ProviderUnavailable
from pingapp.oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT, LOGOUT_JWT_TYPE
from pingapp.settings import Settings

#: The issuer's signing key for (kid, alg); `LoginError` when it publishes none.
KeyLookup = Callable[[str | None, str], Awaitable[jwt.PyJWK]]

#: A Logout Token older than this (by its `iat`) is refused; its `jti` is remembered
#: at least this long, so a replay is refused either way.
LOGOUT_TOKEN_MAX_AGE = 300


def _refused(detail: str, code: str = "bad_id_token") -> LoginError:
    return LoginError("The sign-in could not be verified", detail, code=code)


async def check_id_token(
    id_token: str,
    keys: KeyLookup,
    settings: Settings,
    issuer: str,
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
        raise _refused("The ID token is malformed.") from None
    alg = header.get("alg")
    if alg not in settings.auth_algorithms:
        raise _refused(
            f"The ID token is signed with {alg!r}, which AUTH_ALGORITHMS does not allow."
        )
    key = await keys(header.get("kid"), alg)
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[alg],
            audience=settings.auth_client_id,
            issuer=issuer,
            leeway=settings.auth_leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise _refused(
            f"The ID token was refused: {error}. Sign in again; if it keeps happening, "
            "check AUTH_ISSUER and AUTH_CLIENT_ID."
        ) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.auth_client_id:
        raise _refused(
            "The ID token names several audiences but not this app as its authorized party."
        )
    if nonce is not None and not (
        isinstance(claims.get("nonce"), str) and hmac.compare_digest(claims["nonce"], nonce)
    ):
        raise _refused(
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


async def check_logout_token(
    token: str, keys: KeyLookup, settings: Settings, issuer: str, *, now: float | None = None
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
    if typ is not None and str(typ).lower().removeprefix("application/") != LOGOUT_JWT_TYPE:
        raise LogoutTokenRefused("the logout token's typ is not logout+jwt")
    alg = header.get("alg")
    if alg not in settings.auth_algorithms:
        raise LogoutTokenRefused("the logout token's algorithm is not allowed")
    try:
        key = await keys(header.get("kid"), alg)
    except ProviderUnavailable:
        raise  # the keys cannot be had now: not the token's fault (docs/security.md 48)
    except LoginError:
        raise LogoutTokenRefused("no key of the issuer verifies the logout token") from None
    moment = time.time() if now is None else now
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=settings.auth_client_id,
            issuer=issuer,
            leeway=settings.auth_leeway,
            options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": False},
        )
    except jwt.PyJWTError as error:
        raise LogoutTokenRefused(f"the logout token was refused: {error}") from None
    iat = claims["iat"]
    leeway = settings.auth_leeway
    if not isinstance(iat, int | float) or not (
        moment - LOGOUT_TOKEN_MAX_AGE - leeway <= iat <= moment + leeway
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


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A JWT's header and claims for display only (no checks: the API verifies);
    None for an opaque token."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return header, claims
