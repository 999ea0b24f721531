"""DPoP (RFC 9449) at the embedded provider: proofs at `/token` and `/userinfo`.

A proof is checked with `pingapp.dpop.verify_proof` against the URL the client
addressed (the issuer's, never a forwarded header), on the provider's clock, and its
`jti` is recorded in the provider's own store (a set-if-absent record), so a replay
is refused by every worker. At `/token` it is recorded only when the request names a
code or refresh token the provider holds: anyone can sign a proof with a key of their
own, and a request that can get no token stores nothing (docs/security.md item 38). With
IDP_DPOP_NONCE, a proof must also carry a recent server nonce (`DPoP-Nonce`, derived
from the signing key so that every worker agrees).

At `/token`, a valid proof's key thumbprint goes with the request (`dpop_jkt`): the
grants bind the access token to it (`cnf.jkt`, `token_type: DPoP`), and a public
client's refresh token too. At `/userinfo`, `Authorization: DPoP` needs a proof for
that token (`ath`) by the key it is bound to; errors answer `WWW-Authenticate: DPoP`.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

from authlib.oauth2.base import OAuth2Error
from starlette.responses import Response

from pingapp.devidp import records as r
from pingapp.devidp.adapter import HttpIn, StarletteOAuth2Request
from pingapp.devidp.records import digest
from pingapp.dpop import (
    DEFAULT_ALGS,
    DEFAULT_IAT_WINDOW,
    INVALID_PROOF,
    DPoPError,
    NonceSource,
    VerifiedProof,
    verify_proof,
)

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider

NONCE_HEADER = "DPoP-Nonce"


class ProofRefused(OAuth2Error):
    """A refused proof at `/token`: 400 with `invalid_dpop_proof` or `use_dpop_nonce`
    (and then a fresh `DPoP-Nonce`), RFC 9449 sections 5 and 8."""

    status_code = 400

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
        if self.nonce:
            headers.append((NONCE_HEADER, self.nonce))
        return headers


class ResourceRefused(ProofRefused):
    """A refused request at `/userinfo` with a DPoP challenge (RFC 9449 section 7.1)."""

    def __init__(self, error: str, description: str, nonce: str | None = None, status: int = 401):
        super().__init__(error, description, nonce)
        self.status_code = status

    def get_headers(self) -> list[tuple[str, str]]:
        challenge = f'DPoP error="{self.error}", algs="{" ".join(DEFAULT_ALGS)}"'
        if self.description:
            challenge += f', error_description="{self.description}"'
        return [("WWW-Authenticate", challenge), *super().get_headers()]


def nonce_secret(provider: Provider) -> bytes:
    """The nonces' HMAC secret: from the signing key, which every worker shares."""
    private = provider.keys.current.as_dict(private=True)
    return hashlib.sha256(b"pingapp dpop nonce\0" + str(private["d"]).encode()).digest()


class Proofs:
    """Checks DPoP proofs for one provider; `token_response` is its `/token`."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.nonces: NonceSource | None = None
        if provider.settings.dpop_nonce:
            self.nonces = NonceSource(nonce_secret(provider), clock=provider.clock)

    def nonce(self) -> str | None:
        """The nonce to send now, when the provider requires one."""
        return self.nonces.current() if self.nonces else None

    def check(
        self,
        request: StarletteOAuth2Request,
        path: str,
        *,
        access_token: str | None = None,
        expected_jkt: str | None = None,
        remember: bool = True,
    ) -> VerifiedProof | None:
        """The request's proof, checked in full; None when it has none. `remember`:
        record its `jti` (and refuse it if it was already)."""
        proofs = list(request.dpop_proofs)
        if not proofs:
            return None
        if len(proofs) > 1:
            raise DPoPError("more than one DPoP header")
        clock = self.provider.clock
        verified = verify_proof(
            proofs[0],
            method=request.method,
            url=self.provider.url(path),
            access_token=access_token,
            expected_jkt=expected_jkt,
            nonce=self.nonces.is_valid if self.nonces else None,
            allowed_algs=DEFAULT_ALGS,
            clock=clock,
        )
        claims = verified.claims
        if not remember:
            return verified
        # Remembered while the proof's `iat` is within the window.
        ttl = max(int(claims["iat"] + DEFAULT_IAT_WINDOW - clock()) + 2, 1)
        key = digest(f"{verified.jkt} {claims['jti']}")
        if not self.provider.records.first_use(r.DPOP_PROOFS, key, ttl=ttl):
            raise DPoPError("proof already used")
        return verified

    def token_response(self, http: HttpIn) -> Response:
        """`/token`: the proof first (when sent), then authlib's grants with its `jkt`."""
        server = self.provider.server
        request = StarletteOAuth2Request(http)
        try:
            proof = self.check(request, "/token", remember=self.provider.holds_grant(http.form))
        except DPoPError as error:
            refusal = ProofRefused(error.error, error.description, self.nonce())
            return cast(Response, server.handle_error_response(request, refusal))
        request.dpop_jkt = proof.jkt if proof else None
        response = cast(Response, server.create_token_response(request))
        if nonce := self.nonce():
            response.headers[NONCE_HEADER] = nonce
        return response

    def bound_claims(
        self, request: StarletteOAuth2Request, token: str, claims: dict[str, Any]
    ) -> None:
        """`/userinfo` with `Authorization: DPoP`: the token must be bound, and the
        request's proof made for it (`ath`) by the key it is bound to."""
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str):
            raise ResourceRefused("invalid_token", "The access token is not DPoP-bound.")
        try:
            proof = self.check(request, "/userinfo", access_token=token, expected_jkt=jkt)
        except DPoPError as error:
            raise ResourceRefused(error.error, error.description, self.nonce()) from None
        if proof is None:
            raise ResourceRefused(INVALID_PROOF, "A DPoP proof is required.", self.nonce())
