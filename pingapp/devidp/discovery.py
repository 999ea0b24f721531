"""The discovery document: where each endpoint is and what the provider supports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pingapp.devidp.grants import CLIENT_AUTH_METHODS
from pingapp.devidp.keys import ALGORITHM
from pingapp.dpop import DEFAULT_ALGS

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider


def metadata(provider: Provider) -> dict[str, Any]:
    """The provider's metadata (OpenID Connect Discovery 1.0, RFC 8414)."""
    auth_methods = CLIENT_AUTH_METHODS
    return {
        "issuer": provider.issuer,
        "authorization_endpoint": provider.url("/authorize"),
        "token_endpoint": provider.url("/token"),
        "userinfo_endpoint": provider.url("/userinfo"),
        "jwks_uri": provider.url("/.well-known/jwks.json"),
        "end_session_endpoint": provider.url("/logout"),
        "revocation_endpoint": provider.url("/revoke"),
        # RP-Initiated Logout 1.0 only: id_token_hint, or client_id + logout_hint
        # (the user's `sub`), post_logout_redirect_uri (registered), state.
        "frontchannel_logout_supported": False,
        # Back-Channel Logout 1.0: a Logout Token with `sid` and `sub` to each client
        # with a `backchannel_logout_uri`, at logout and when a grant is revoked.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # RFC 9126
        "pushed_authorization_request_endpoint": provider.url("/par"),
        "require_pushed_authorization_requests": provider.settings.require_par,
        # RFC 9207: `iss` in every authorization response, success or error.
        "authorization_response_iss_parameter_supported": True,
        "scopes_supported": provider.scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449: DPoP proofs at /token (bound tokens) and /userinfo.
        "dpop_signing_alg_values_supported": list(DEFAULT_ALGS),
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "amr",
            "sid",
            "nonce",
            "azp",
            "name",
            "nickname",
            "preferred_username",
            "picture",
            "email",
            "email_verified",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
