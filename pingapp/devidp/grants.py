"""The grants authlib runs for this provider, and what they check.

Authorization code with PKCE (S256 only, required of every client) and an ID token
(OpenID Connect); refresh token with rotation, where presenting a used refresh
token again revokes the whole grant. With a valid DPoP proof (`proofs.py`) both
issue tokens bound to its key; a code pushed or asked for with `dpop_jkt`, and a
public client's bound refresh token, work only with a proof by that key. The records
behind them (codes, refresh tokens, nonces) are the provider's (`provider.py`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from authlib.oidc.core.grants.code import OpenIDToken
from joserfc.jwk import KeySet

from pingapp.devidp.adapter import client_of, dpop_jkt_of, payload_of, subject_of
from pingapp.devidp.keys import ALGORITHM
from pingapp.devidp.models import AuthorizationCode, Client, IssuedToken, Subject

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class InvalidRequestUriError(OAuth2Error):
    """RFC 9126 section 4: a `request_uri` unknown, used, expired or of another client."""

    error = "invalid_request_uri"


class InvalidTargetError(OAuth2Error):
    """RFC 8707 section 2: the requested resource (audience) is not known here."""

    error = "invalid_target"


def requested_audience(datalist: Any, known: list[str]) -> str | None:
    """`audience` (Auth0) or `resource` (RFC 8707): one known API identifier, or none."""
    values = list(dict.fromkeys([*datalist.get("audience", []), *datalist.get("resource", [])]))
    if not values:
        return None
    if len(values) > 1:
        raise InvalidTargetError("Ask for one audience (API identifier) at a time.")
    if values[0] not in known:
        # (no echo of the value: error descriptions allow few characters)
        raise InvalidTargetError("Unknown audience (API identifier).")
    return values[0]


class S256Challenge(CodeChallenge):
    """PKCE is required of every client, and only with S256 (RFC 9700 section 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (authlib's attribute)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send 'code_challenge' (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only 'code_challenge_method=S256' is supported.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


class _DPoPBound:
    """Tokens bound to the key of the request's DPoP proof, when it has one."""

    server: Any
    request: OAuth2Request
    GRANT_TYPE: str

    @property
    def provider(self) -> Provider:
        return self.server.provider

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        return self.provider.access_tokens.generate(
            grant_type or self.GRANT_TYPE,
            client_of(self.request),
            user,
            scope,
            expires_in,
            include_refresh_token,
            jkt=dpop_jkt_of(self.request),
        )

    def require_key(self, jkt: str | None, what: str) -> None:
        """RFC 9449 sections 5 and 10: a bound code or refresh token needs its key."""
        if jkt and jkt != dpop_jkt_of(self.request):
            raise InvalidGrantError(f"The {what} is bound to a DPoP key: prove it.")


class CodeGrant(_DPoPBound, AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.provider.save_code(code, request)

    def query_authorization_code(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, code: str, client: Client
    ) -> AuthorizationCode | None:
        found = self.provider.take_code(code, client)
        if found is not None:
            self.require_key(found.dpop_jkt, "code")
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        return None  # `take_code` already removed it, atomically

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Subject | None:
        subject = authorization_code.subject
        return subject if subject.username in self.provider.users else None


class RefreshGrant(_DPoPBound, RefreshTokenGrant):
    """Refresh with rotation: each use returns a new refresh token, the old one dies,
    and presenting a dead one again revokes the whole grant (RFC 9700 section 4.14.2).
    A bound refresh token without a proof by its key is refused and stays valid."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, refresh_token: str
    ) -> IssuedToken | None:
        found = self.provider.find_refresh_token(refresh_token)
        if found is not None:
            self.require_key(found.jkt, "refresh token")
        return found

    def authenticate_user(self, refresh_token: IssuedToken) -> Subject | None:
        subject = refresh_token.subject
        return subject if subject and subject.username in self.provider.users else None

    def create_token_response(self) -> Any:
        # Claim the token atomically before issuing: of two concurrent uses, one
        # loses here and is treated as a reuse.
        token = self.request.refresh_token
        if not isinstance(token, IssuedToken) or not self.provider.claim_refresh_token(token):
            raise InvalidGrantError("The refresh token was already used.")
        return super().create_token_response()

    def revoke_old_credential(self, refresh_token: Any) -> None:
        return None  # claimed (deleted) above


class _IdTokenSigning:
    """What both ID-token extensions need: keys, issuer, claims of the user."""

    provider: Provider

    def resolve_client_private_key(self, client: Any) -> KeySet:
        return self.provider.keys.signing_set()

    def get_client_algorithm(self, client: Any) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Any) -> dict[str, str]:
        return {"alg": ALGORITHM, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        # Wall-clock time, not the provider's clock: the client checks `iat` and `exp`
        # against its own (as for access and Logout Tokens).
        now = int(time.time())
        return {
            "iss": self.provider.issuer,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + self.provider.settings.id_token_ttl,
        }

    def get_compatible_claims(self, request: OAuth2Request) -> dict[str, Any]:
        claims = self.get_client_claims(client_of(request))
        subject = subject_of(request)
        claims["auth_time"] = subject.auth_time
        if subject.sid:  # Back-Channel Logout 1.0 section 2.1
            claims["sid"] = subject.sid
        return claims

    def generate_user_info(self, user: Subject, scope: str) -> UserInfo:
        return self.provider.user_info(user.username, scope)


class IdTokenOnCode(_IdTokenSigning, OpenIDCode):
    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.nonce_used(payload_of(request).client_id, nonce)


class IdTokenOnRefresh(_IdTokenSigning, OpenIDToken):
    """A fresh ID token with each refresh (OIDC Core section 12.2), without nonce."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
