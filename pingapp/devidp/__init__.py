"""Embedded development OpenID Provider, mounted at `/idp` when no issuer is configured
and the app is served on a loopback public URL and its backend listens on a loopback
address (BACKEND_HOST), or IDP_ENABLED=1 says to serve it anyway.

A real OpenID Provider built on authlib's server components, so the app signs in
with zero configuration and every test runs offline. Not for production.

Endpoints (relative to the issuer `{backend}/idp`): `/.well-known/openid-configuration`,
`/.well-known/jwks.json`, `/authorize`, `/par`, `/login`, `/consent`, `/token`,
`/userinfo`, `/revoke`, `/logout`. Grants: authorization code (PKCE S256 required,
OpenID Connect; pushed authorization requests, RFC 9126, required when
IDP_REQUIRE_PAR=1; `iss` in every authorization response, RFC 9207) and refresh
token (rotated; reuse revokes the grant). `max_age` and `prompt=login` ask for the
password again; `auth_time` is in ID and access tokens. Clients: the app's
(AUTH_CLIENT_ID, `/callback` only, Logout Tokens to `{backend}/auth/backchannel-logout`)
and the API docs' (`EMBEDDED_DOCS_CLIENT_ID`). Sign-out: RP-Initiated Logout 1.0 with
`id_token_hint` (no question when it names the session's user), or `client_id` +
`logout_hint` (always asked); Back-Channel Logout 1.0 (`sid` in ID tokens; a Logout
Token to each client of the session when it ends at `/logout`, or when a grant is
revoked). Failed sign-ins are throttled per user and per client address
(IDP_SIGNIN_*, TRUSTED_PROXIES); request bodies over 64 KiB get 413.

Limits: records live in process memory unless REFLEX_REDIS_URL (or IDP_REDIS_URL) is
set, so several workers need Redis; revoking a grant stops its refresh tokens and
userinfo at once, but the API, being stateless, accepts an access token already
issued until it expires (IDP_ACCESS_TOKEN_TTL, 600 s by default).

`__all__` is the provider's public interface for code outside `pingapp/` (tests,
tools); pingapp's own modules import each name from the module that defines it
(`pingapp.devidp.app.create_idp`), never through this package.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.routing import Mount

from pingapp.devidp.app import create_idp
from pingapp.routes import IDP
from pingapp.urls import is_loopback_host

if TYPE_CHECKING:
    from pingapp.settings import Settings

__all__ = [
    "backend_host",
    "create_idp",
    "embedded_provider_mounts",
    "is_loopback_url",
    "should_mount",
]

log = logging.getLogger("pingapp.devidp")


def is_loopback_url(url: str) -> bool:
    """Whether the URL's host is `localhost`, `::1` or a `127.x` address (nothing else:
    not `0.0.0.0`, not a private address, not a name that merely starts with one)."""
    try:
        return is_loopback_host(urlsplit(url).hostname)
    except ValueError:
        return False


def should_mount(
    public_url: str, settings: Settings, backend_host: str = "127.0.0.1"
) -> tuple[bool, str]:
    """Whether to mount the embedded provider for an app served at `public_url` by a
    backend listening on `backend_host`, and why.

    Only with no external issuer, and then only when both are loopback unless
    IDP_ENABLED is set: the provider's demo users must not sign anyone in to an app
    that other machines can reach, through its public URL or straight at a backend
    listening on another interface (docs/security.md item 33).
    """
    if not settings.uses_embedded_provider:
        return False, "an external issuer is configured (AUTH_ISSUER or AUTH0_DOMAIN)"
    exposed = []
    if not is_loopback_url(public_url):
        exposed.append(f"the public URL {public_url} is not loopback")
    if not is_loopback_host(backend_host):
        exposed.append(f"the backend listens on BACKEND_HOST={backend_host}, not loopback")
    if not exposed:
        return True, (
            f"no issuer is configured, the public URL {public_url} is loopback and the "
            f"backend listens on {backend_host}"
        )
    why = " and ".join(exposed)
    if settings.idp_enabled:
        return True, (
            f"IDP_ENABLED=1: serving the development provider although {why} (not for production)"
        )
    return False, (
        f"no issuer is configured and {why}, so the embedded development provider is "
        "not mounted and sign-in will not work. Set AUTH_ISSUER (or AUTH0_DOMAIN) to "
        "your OpenID Provider, or IDP_ENABLED=1 to serve the development provider there "
        "anyway (never in production)"
    )


def backend_host() -> str:
    """The address the backend listens on: Reflex's `backend_host` (rxconfig.py reads
    BACKEND_HOST; REFLEX_BACKEND_HOST and `reflex run --backend-host` override it)."""
    from reflex.config import get_config

    return get_config().backend_host


def embedded_provider_mounts() -> list[Mount]:
    """`[Mount("/idp", ...)]` when `should_mount` says so for `frontend_url()` and
    `backend_host()`, else `[]` (with a WARNING that says why and what to set, unless
    an issuer is configured)."""
    from pingapp.settings import get_settings
    from pingapp.urls import frontend_url

    settings = get_settings()
    public_url = frontend_url()
    host = backend_host()
    mount, reason = should_mount(public_url, settings, host)
    if not mount:
        if settings.uses_embedded_provider:
            log.warning("pingapp: %s.", reason)
        return []
    if not (is_loopback_url(public_url) and is_loopback_host(host)):
        log.warning("pingapp: %s.", reason)
    return [Mount(IDP, app=create_idp())]
