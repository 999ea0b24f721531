"""Embedded development OpenID Provider, mounted at `/idp` when no issuer is configured.

A real OpenID Provider built on authlib's server components, so the app signs in
with zero configuration and every test runs offline. Not for production.

Endpoints (relative to the issuer `{backend}/idp`): `/.well-known/openid-configuration`,
`/.well-known/jwks.json`, `/authorize`, `/login`, `/consent`, `/token`, `/userinfo`,
`/revoke`, `/logout`. Grants: authorization code (PKCE S256 required, OpenID Connect)
and refresh token (rotated; reuse revokes the grant).

Limits: records live in process memory unless REFLEX_REDIS_URL (or IDP_REDIS_URL) is
set, so several workers need Redis; revoking a grant stops its refresh tokens and
userinfo at once, but the API, being stateless, accepts an access token already
issued until it expires (IDP_ACCESS_TOKEN_TTL, 600 s by default).
"""

from starlette.routing import Mount

from pingapp.devidp.app import create_idp

__all__ = ["create_idp", "embedded_provider_mounts"]


def embedded_provider_mounts() -> list[Mount]:
    """`[Mount("/idp", ...)]` when no external issuer is configured, else `[]`."""
    from pingapp.settings import get_settings

    if not get_settings().uses_embedded_provider:
        return []
    return [Mount("/idp", app=create_idp())]
