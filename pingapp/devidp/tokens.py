"""The tokens this provider issues and the endpoints that read them.

RFC 9068 access tokens (`typ: at+jwt`, RS256, the API and userinfo as audiences,
`auth_time` and `amr` for step-up, `cnf.jkt` when DPoP-bound), checked again at
userinfo with revocation (a bound token only with `Authorization: DPoP` and a proof);
revocation (RFC 7009); and RP-Initiated Logout's endpoint, whose session part the
HTTP layer does (`logout.py`).
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, cast

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from authlib.oidc.core import UserInfo, UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from joserfc.jwk import KeySet

from pingapp.devidp.adapter import payload_of
from pingapp.devidp.grants import CLIENT_AUTH_METHODS
from pingapp.devidp.keys import ALGORITHM
from pingapp.devidp.models import IssuedToken, Subject
from pingapp.devidp.proofs import ResourceRefused

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider

#: The DPoP key the access token being generated is bound to (authlib's generator
#: takes no request, so `generate` sets it for `get_extra_claims`).
_BINDING: ContextVar[str | None] = ContextVar("dpop_jkt", default=None)


class AccessTokens(JWTBearerTokenGenerator):
    """RFC 9068 access tokens: `typ: at+jwt`, RS256, the API as audience."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(
            issuer=provider.issuer,
            alg=ALGORITHM,
            refresh_token_generator=lambda **_: secrets.token_urlsafe(48),
            expires_generator=lambda client, grant_type: provider.settings.access_token_ttl,
        )
        self.provider = provider

    def get_jwks(self) -> KeySet:
        return self.provider.keys.signing_set()

    def get_audiences(self, client: Any, user: Subject, scope: str) -> str | list[str]:
        # As Auth0 does: the API, plus this provider's userinfo when `openid` was granted.
        userinfo = self.provider.url("/userinfo")
        if user.audience is None:
            return userinfo
        if "openid" in scope_to_list(scope):
            return [user.audience, userinfo]
        return user.audience

    def get_auth_time(self, user: Subject) -> int:
        # RFC 9068 section 2.2.1 and RFC 9470: the API can ask for a recent sign-in.
        return user.auth_time

    def get_amr(self, user: Subject) -> list[str]:
        return ["pwd"]

    def get_extra_claims(self, client: Any, grant_type: str, user: Any, scope: str) -> dict:
        jkt = _BINDING.get()
        return {"cnf": {"jkt": jkt}} if jkt else {}  # RFC 9449 section 6.1

    def generate(
        self,
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
        *,
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """The token response; bound to the DPoP key `jkt` when given."""
        # A refresh token only with `offline_access` (as Auth0 and OIDC section 11).
        offline = "offline_access" in scope_to_list(scope or "")
        binding = _BINDING.set(jkt)
        try:
            token = super().generate(
                grant_type, client, user, scope, expires_in, include_refresh_token and offline
            )
        finally:
            _BINDING.reset(binding)
        if jkt:
            token["token_type"] = "DPoP"  # noqa: S105 (a token type, not a secret)
        return token


class AccessTokenValidator(JWTBearerTokenValidator):
    """RFC 9068 section 4 checks for the userinfo endpoint, plus revocation."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(issuer=provider.issuer, resource_server=provider.url("/userinfo"))
        self.provider = provider

    def get_jwks(self) -> KeySet:
        return self.provider.keys.public_set()

    def authenticate_token(self, token_string: str) -> Any:
        claims = super().authenticate_token(token_string)
        if not self.provider.access_token_active(token_string):
            raise InvalidTokenError(realm=self.realm)
        return claims


class UserInfoAdapter(UserInfoEndpoint):
    """authlib's endpoint reads the token through Flask's request; ours is explicit."""

    def __call__(self, request: OAuth2Request) -> tuple[int, Any, list[tuple[str, str]]]:
        assert self.resource_protector is not None
        provider: Provider = cast(Any, self.server).provider
        scheme, _, token = (request.headers or {}).get("Authorization", "").partition(" ")
        if scheme.lower() == "dpop":
            claims = self._dpop_claims(provider, request, token.strip())
        else:
            claims = self.resource_protector.validate_request(["openid"], request)
            if "cnf" in claims:  # RFC 9449 section 7.2: a bound token is no bearer token
                raise ResourceRefused("invalid_token", "A DPoP-bound token needs DPoP.")
        info = self.generate_user_info(claims["sub"], claims.get("scope", ""))
        return 200, dict(info), [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    def _dpop_claims(self, provider: Provider, request: OAuth2Request, token: str) -> Any:
        validator = provider.access_validator
        try:
            claims = validator.authenticate_token(token)
            validator.validate_token(claims, ["openid"], request)
        except OAuth2Error as error:
            status = error.status_code or 401
            raise ResourceRefused(
                str(error.error), error.description or "", status=status
            ) from None
        provider.proofs.bound_claims(cast(Any, request), token, claims)
        return claims

    def generate_user_info(self, user: Any, scope: str) -> UserInfo:
        provider: Provider = cast(Any, self.server).provider
        if user not in provider.users:
            raise InvalidTokenError()
        return provider.user_info(user, scope)


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.provider.find_token(token_string)

    def revoke_token(self, token: IssuedToken, request: OAuth2Request) -> None:
        self.server.provider.revoke(token)


class EndSession(EndSessionEndpoint):
    """RP-Initiated Logout 1.0 with `id_token_hint`, or `client_id` (+ `logout_hint`)."""

    def get_server_jwks(self) -> KeySet:
        return cast(Any, self.server).provider.keys.public_set()

    def get_algorithms(self) -> list[str]:
        return [ALGORITHM]

    def is_post_logout_redirect_uri_legitimate(
        self, request: OAuth2Request, post_logout_redirect_uri: str, client: Any, logout_hint: Any
    ) -> bool:
        """Without `id_token_hint`: a URI registered for the client named by `client_id`
        (authlib checked the registration) is where that client asked to be sent."""
        return bool(payload_of(request).data.get("client_id"))

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        return None  # the HTTP layer owns the session cookie and clears it
