"""The sign-in's DPoP (RFC 9449) choices: which key a sign-in gets, and whether the
provider bound the tokens to it.

- `login_key`: AUTH_DPOP and the provider's `dpop_signing_alg_values_supported`
  decide whether a sign-in gets a key (ES256 when listed), in its storage form.
- `bound_jkt`, `not_bound_error`: the binding the token response reports.

The key is a secret: it lives in the pending login and then the server session,
which the vault encrypts at rest, and never reaches the browser. Requests with a
proof: `pingapp.dpop.send_with_proof` and `pingapp.outbound.http.TokenAuth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.dpop import DPoPKey
from pingapp.oidc.errors import LoginError

#: The algorithm a key is made for when the provider lists it.
PREFERRED_ALG = "ES256"
#: The algorithms this client can make a key for, in order of preference.
CLIENT_ALGS = ("ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256")


def login_key(mode: str, metadata: Mapping[str, Any]) -> str:
    """A new key for a sign-in, as `DPoPKey.to_json` text, or '' when the sign-in
    uses bearer tokens. `mode` is AUTH_DPOP; with `required`, a provider without a
    usable DPoP algorithm is a `LoginError`."""
    if mode == "off":
        return ""
    listed = metadata.get("dpop_signing_alg_values_supported")
    offered = [alg for alg in listed if isinstance(alg, str)] if isinstance(listed, list) else []
    usable = [alg for alg in CLIENT_ALGS if alg in offered and alg in ASYMMETRIC_ALGORITHMS]
    if usable:
        alg = PREFERRED_ALG if PREFERRED_ALG in usable else usable[0]
        return DPoPKey.generate(alg).to_json()
    if mode == "required":
        raise LoginError(
            "The sign-in provider does not support DPoP",
            "AUTH_DPOP=required, but its discovery document lists no DPoP algorithm "
            f"this app can use (dpop_signing_alg_values_supported: {offered or 'none'}). "
            "Set AUTH_DPOP=auto to sign in with bearer tokens.",
            code="no_dpop",
        )
    return ""


def not_bound_error() -> LoginError:
    """AUTH_DPOP=required, and the provider answered a proof with a bearer token."""
    return LoginError(
        "The sign-in provider did not bind the token",
        "AUTH_DPOP=required, but the provider answered with a bearer token "
        "(token_type is not DPoP). Set AUTH_DPOP=auto to accept bearer tokens.",
        code="dpop_not_bound",
    )


def bound_jkt(tokens: Mapping[str, Any], dpop_key: str) -> str:
    """The thumbprint of the key a token response is bound to: `dpop_key`'s when the
    provider answered `token_type: DPoP` (RFC 9449 section 5), else '' (bearer)."""
    if not dpop_key or str(tokens.get("token_type", "")).lower() != "dpop":
        return ""
    return DPoPKey.from_json(dpop_key).jkt
