"""Embedded development OpenID Provider, mounted at `/idp` when no issuer is configured.

A real OpenID Provider built on authlib's server components, so the app signs in
with zero configuration and every test runs offline. Not for production.

Endpoints (relative to the issuer `{backend}/idp`): `/.well-known/openid-configuration`,
`/.well-known/jwks.json`, `/authorize`, `/login`, `/consent`, `/token`, `/userinfo`,
`/revoke`, `/logout`.
"""

from pingapp.devidp.app import create_idp

__all__ = ["create_idp"]
