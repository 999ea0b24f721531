"""The objects authlib's grants ask for: clients, the signed-in subject, codes, tokens."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, scope_to_list
from authlib.oidc.core import AuthorizationCodeMixin

PUBLIC_AUTH = ("none",)
CONFIDENTIAL_AUTH = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class Client(ClientMixin):
    """A registered client. No secret: a public client, which must use PKCE."""

    client_id: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    secret: str | None = None
    #: OIDC Back-Channel Logout 1.0: where Logout Tokens are POSTed, if anywhere.
    backchannel_logout_uri: str | None = None
    #: Whether the client needs `sid` in Logout Tokens (this provider always sends it).
    backchannel_logout_session_required: bool = False

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        # Every request names its redirect URI, which must match exactly.
        return ""

    def get_allowed_scope(self, scope: str | None) -> str | None:  # pyright: ignore[reportIncompatibleMethodOverride]
        # No scope asked for: refuse (RFC 6749 section 3.3 allows it) rather than guess.
        # Scopes the server does not know were refused before this point.
        return " ".join(scope_to_list(scope)) if scope else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match against the registered list (RFC 9700 section 4.1.3)."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in (CONFIDENTIAL_AUTH if self.secret else PUBLIC_AUTH)

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}

    @property
    def client_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris)
        }
        if self.backchannel_logout_uri:
            metadata["backchannel_logout_uri"] = self.backchannel_logout_uri
            metadata["backchannel_logout_session_required"] = (
                self.backchannel_logout_session_required
            )
        return metadata


@dataclass(frozen=True)
class Subject:
    """The signed-in user as one grant sees them (authlib's `user`).

    Carries what the tokens of this grant need: when the user signed in, the
    audience asked for, the grant id that ties codes, access and refresh tokens
    together so a replay can revoke them all, and the provider session's public
    id (`sid`, OIDC Back-Channel Logout 1.0), never the session cookie.
    """

    username: str
    auth_time: int
    gid: str
    audience: str | None = None
    grant_expires: int = 0
    sid: str = ""

    def get_user_id(self) -> str:
        return self.username


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    client_id: str
    redirect_uri: str
    scope: str
    subject: Subject
    code_challenge: str
    code_challenge_method: str
    nonce: str | None = None
    #: RFC 9449 section 10: the DPoP key the code must be redeemed with.
    dpop_jkt: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.subject.auth_time

    def get_acr(self) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass(frozen=True)
class IssuedToken(TokenMixin):
    """A refresh or access token this provider issued, as revocation sees it."""

    key: str  # the token's digest
    kind: str  # "refresh_token" or "access_token"
    client_id: str
    gid: str
    scope: str = ""
    #: Whom the grant is for (refresh tokens only).
    subject: Subject | None = None
    #: The DPoP key a refresh token is bound to ("" when none).
    jkt: str = ""

    def check_client(self, client: ClientMixin) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # expired records read as absent

    def is_revoked(self) -> bool:
        return False  # revoked records are gone from the store
