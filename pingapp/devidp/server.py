"""authlib's authorization server, wired to this provider's storage and keys.

authlib does the OAuth work (request validation, PKCE, grants, ID tokens, RFC 9068
access tokens, revocation, RP-initiated logout); this module supplies what its
classes leave abstract and a thin adapter from Starlette requests. The HTTP routes
and pages are in `app.py`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
    ResourceProtector,
    scope_to_list,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6750 import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from authlib.oidc.core import OpenIDCode, UserInfo, UserInfoEndpoint
from authlib.oidc.core.grants.code import OpenIDToken
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from joserfc.jwk import KeySet
from starlette.responses import JSONResponse, Response

from pingapp.devidp.backchannel import LogoutDelivery, LogoutNotice, logout_token
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.keys import ALGORITHM, SigningKeys
from pingapp.devidp.models import AuthorizationCode, Client, IssuedToken, Subject
from pingapp.devidp.storage import Record, Store
from pingapp.devidp.throttle import SignInThrottle

log = logging.getLogger("pingapp.devidp")

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")
#: RFC 9126 section 2.2: the prefix of a pushed request's handle.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: How long a pushed authorization request can be used (RFC 9126 suggests 5 to 600 s).
PAR_TTL = 60


def digest(secret: str) -> str:
    """Store keys are hashes, so a dump of the store holds no usable code or token."""
    return hashlib.sha256(secret.encode()).hexdigest()


# --------------------------------------------------------------------------
# Starlette -> authlib adapter
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpIn:
    """What a handler needs from a Starlette request, read before leaving the loop."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    cookies: Mapping[str, str] = field(default_factory=dict)
    #: The peer's address as the server saw it (no X-Forwarded-For: anyone can send one).
    client: str = ""

    @property
    def params(self) -> list[tuple[str, str]]:
        """OAuth parameters: the body for POST, the query string otherwise."""
        return self.form if self.method == "POST" else self.query


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            datalist[name].append(value)
        self._datalist = datalist
        self._data = {name: values[0] for name, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, http: HttpIn) -> None:
        super().__init__(http.method, http.url, headers=http.headers)
        self.payload = _Payload(http.params)
        self._args = dict(http.query)
        self._form = dict(http.form)

    @property
    def args(self) -> dict[str, str]:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def payload_of(request: OAuth2Request) -> OAuth2Payload:
    if request.payload is None:
        raise InvalidRequestError()
    return request.payload


def client_of(request: OAuth2Request) -> Client:
    if not isinstance(request.client, Client):
        raise InvalidClientError()
    return request.client


def subject_of(request: OAuth2Request) -> Subject:
    if not isinstance(request.user, Subject):
        raise InvalidGrantError()
    return request.user


def is_bad_input(error: ValueError) -> bool:
    """authlib raises ValueError, not an OAuth error, when an error description would
    quote a character RFC 6749 forbids there (e.g. a `"` in a redirect URI)."""
    return "forbidden characters" in str(error)


class InvalidRequestUriError(OAuth2Error):
    """RFC 9126 section 4: a `request_uri` unknown, used, expired or of another client."""

    error = "invalid_request_uri"


class InvalidTargetError(OAuth2Error):
    """RFC 8707 section 2: the requested resource (audience) is not known here."""

    error = "invalid_target"


# --------------------------------------------------------------------------
# authlib's abstract pieces
# --------------------------------------------------------------------------


class Server(AuthorizationServer):
    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=provider.scopes)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_tokens(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError  # no JSON endpoints (no dynamic registration)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        header_map = dict(headers or [])
        if isinstance(body, dict):
            header_map.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


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


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    @property
    def provider(self) -> Provider:
        return self.server.provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.provider.save_code(code, request)

    def query_authorization_code(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, code: str, client: Client
    ) -> AuthorizationCode | None:
        return self.provider.take_code(code, client)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        return None  # `take_code` already removed it, atomically

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Subject | None:
        subject = authorization_code.subject
        return subject if subject.username in self.provider.users else None


class RefreshGrant(RefreshTokenGrant):
    """Refresh with rotation: each use returns a new refresh token, the old one dies,
    and presenting a dead one again revokes the whole grant (RFC 9700 section 4.14.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    @property
    def provider(self) -> Provider:
        return self.server.provider

    def authenticate_refresh_token(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, refresh_token: str
    ) -> IssuedToken | None:
        return self.provider.find_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: IssuedToken) -> Subject | None:
        subject = self.provider.subject_of(refresh_token.record)
        return subject if subject.username in self.provider.users else None

    def create_token_response(self) -> Any:
        # Claim the token atomically before issuing: of two concurrent uses, one
        # loses here and is treated as a reuse.
        token = self.request.refresh_token
        if not isinstance(token, IssuedToken) or not self.provider.claim_refresh_token(token):
            raise InvalidGrantError("The refresh token was already used.")
        return super().create_token_response()

    def revoke_old_credential(self, refresh_token: Any) -> None:
        return None  # claimed (deleted) above


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

    def generate(
        self,
        grant_type: str,
        client: Any,
        user: Any = None,
        scope: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # A refresh token only with `offline_access` (as Auth0 and OIDC section 11).
        offline = "offline_access" in scope_to_list(scope or "")
        return super().generate(
            grant_type, client, user, scope, expires_in, include_refresh_token and offline
        )


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
        claims = self.resource_protector.validate_request(["openid"], request)
        info = self.generate_user_info(claims["sub"], claims.get("scope", ""))
        return 200, dict(info), [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    def generate_user_info(self, user: Any, scope: str) -> UserInfo:
        provider: Provider = cast(Any, self.server).provider
        if user not in provider.users:
            raise InvalidTokenError()
        return provider.user_info(user, scope)


# --------------------------------------------------------------------------
# The provider: records in the store, and the server that uses them
# --------------------------------------------------------------------------


class Provider:
    """The embedded OpenID Provider's state and authlib server."""

    def __init__(
        self,
        *,
        issuer: str,
        settings: IdpSettings,
        clients: list[Client],
        audiences: list[str],
        scopes: list[str],
        store: Store,
        keys: SigningKeys,
        clock: Callable[[], float] = time.time,
        logout_delivery: LogoutDelivery | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        #: Sign-in times, `max_age`, pushed requests' expiry and the throttle use it.
        self.clock = clock
        self.logout_delivery = logout_delivery or LogoutDelivery()
        self.settings = settings
        self.clients = {client.client_id: client for client in clients}
        self.audiences = list(dict.fromkeys(audiences))
        self.scopes = list(dict.fromkeys([*STANDARD_SCOPES, *scopes]))
        self.store = store
        self.keys = keys
        self.users = settings.demo_users()
        #: Passwords the sign-in page may show: the built-in demo users' only.
        self.shown_passwords = settings.shown_passwords()
        self.throttle = SignInThrottle(
            store,
            per_user=settings.signin_max_failures,
            per_address=settings.signin_max_failures_per_address,
            window=settings.signin_window,
            clock=clock,
        )
        self.server = self._build_server()

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def _build_server(self) -> Server:
        server = Server(self)
        server.register_token_generator("default", AccessTokens(self))
        server.register_grant(CodeGrant, [S256Challenge(required=True), IdTokenOnCode(self)])
        server.register_grant(RefreshGrant, [IdTokenOnRefresh(self)])
        server.register_endpoint(Revocation)
        server.register_endpoint(EndSession)
        protector = ResourceProtector()
        protector.register_token_validator(AccessTokenValidator(self))
        server.register_endpoint(UserInfoAdapter(server, resource_protector=protector))
        return server

    # -- users ---------------------------------------------------------------

    def check_password(self, username: str, password: str) -> bool:
        expected = self.users.get(username, "")
        # Compare even for an unknown user, so timing does not tell which names exist.
        same = secrets.compare_digest(expected.encode(), password.encode())
        return same and username in self.users

    def user_info(self, username: str, scope: str) -> UserInfo:
        info = UserInfo(
            sub=username,
            name=username.capitalize(),
            nickname=username,
            preferred_username=username,
            picture=self.url(f"/avatar/{username}.svg"),
            email=f"{username}@example.com",
            email_verified=True,
        )
        return info.filter(scope)

    # -- authorization codes (SECURITY.md item 27) -----------------------------

    def save_code(self, code: str, request: OAuth2Request) -> None:
        subject = subject_of(request)
        client = client_of(request)
        data = payload_of(request).data
        now = self.clock()
        record = {
            "client_id": client.client_id,
            "redirect_uri": payload_of(request).redirect_uri,
            # The scope the user consented to, which may be less than asked for.
            "scope": getattr(request, "granted_scope", None) or request.scope,
            "nonce": data.get("nonce"),
            "code_challenge": data["code_challenge"],
            "code_challenge_method": data["code_challenge_method"],
            "expires_at": now + self.settings.code_ttl,
            "subject": subject.__dict__,
        }
        self.store.put(f"code:{digest(code)}", record, self.settings.code_ttl)
        if subject.sid:
            # This client got tokens in this provider session: it hears of its end.
            # One record per client, so two sign-ins at once cannot lose one.
            key = f"sess_client:{subject.sid}:{client.client_id}"
            self.store.put(key, {}, self.settings.session_ttl)
        if nonce := data.get("nonce"):
            key = f"nonce:{client.client_id}:{digest(nonce)}"
            self.store.put(key, {}, self.settings.id_token_ttl)

    def take_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code's record, removed: a code works once, for its client, within its TTL."""
        key = digest(code)
        record = self.store.take(f"code:{key}")
        if record is None:
            used = self.store.get(f"used_code:{key}")
            if used is not None:
                log.warning("authorization code used twice: revoking its grant")
                self.revoke_grant(used["gid"], used)
            return None
        subject = Subject(**record.pop("subject"))
        used = self._grant_owner(subject.gid, record["client_id"], subject)
        self.store.put(f"used_code:{key}", used, self.settings.refresh_token_ttl)
        if record["client_id"] != client.client_id or record["expires_at"] < self.clock():
            return None
        return AuthorizationCode(subject=subject, **record)

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        return self.store.get(f"nonce:{client_id}:{digest(nonce)}") is not None

    # -- grants and tokens -----------------------------------------------------

    @staticmethod
    def _grant_owner(gid: str, client_id: str, subject: Subject) -> Record:
        """What revoking a grant later needs: whom to tell (client, user, session)."""
        return {"gid": gid, "client_id": client_id, "sub": subject.username, "sid": subject.sid}

    def revoke_grant(self, gid: str, owner: Record | None = None) -> None:
        """End a grant; the first time, tell its client by back-channel logout when
        `owner` (see `_grant_owner`) names the client and the provider session."""
        if self.grant_revoked(gid):
            return
        self.store.put(f"revoked:{gid}", {}, self.settings.refresh_token_ttl)
        if owner and owner.get("sid") and owner.get("client_id"):
            self.send_logout(owner["sid"], owner["sub"], [owner["client_id"]])

    def grant_revoked(self, gid: str) -> bool:
        return self.store.get(f"revoked:{gid}") is not None

    @staticmethod
    def subject_of(record: Record) -> Subject:
        return Subject(**record["subject"])

    def save_tokens(self, token: dict[str, Any], request: OAuth2Request) -> None:
        subject = subject_of(request)
        previous = request.refresh_token
        now = int(time.time())
        if not isinstance(previous, IssuedToken):  # a new grant, from a code
            expires = now + self.settings.refresh_token_ttl
            subject = Subject(**{**subject.__dict__, "grant_expires": expires})
        base = {"gid": subject.gid, "client_id": client_of(request).client_id}
        self.store.put(f"at:{digest(token['access_token'])}", base, self.settings.access_token_ttl)
        if refresh := token.get("refresh_token"):
            # A rotated refresh token keeps the scope of the grant, not of this request.
            scope = previous.scope if isinstance(previous, IssuedToken) else token["scope"]
            record = {**base, "scope": scope, "subject": subject.__dict__}
            ttl = subject.grant_expires - now
            if ttl > 0:
                self.store.put(f"rt:{digest(refresh)}", record, ttl)

    def find_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        key = digest(refresh_token)
        record = self.store.get(f"rt:{key}")
        if record is None:
            used = self.store.get(f"used_rt:{key}")
            if used is not None:
                log.warning("refresh token reused: revoking its grant")
                self.revoke_grant(used["gid"], used)
            return None
        if self.grant_revoked(record["gid"]):
            return None
        return IssuedToken(
            key, "refresh_token", record["client_id"], record["gid"], record["scope"], record
        )

    def _owner_of(self, token: IssuedToken) -> Record | None:
        if "subject" not in token.record:
            return None
        return self._grant_owner(token.gid, token.client_id, self.subject_of(token.record))

    def claim_refresh_token(self, token: IssuedToken) -> bool:
        owner = self._owner_of(token)
        if self.store.take(f"rt:{token.key}") is None:
            self.revoke_grant(token.gid, owner)
            return False
        used = owner or {"gid": token.gid}
        self.store.put(f"used_rt:{token.key}", used, self.settings.refresh_token_ttl)
        return True

    def access_token_active(self, access_token: str) -> bool:
        record = self.store.get(f"at:{digest(access_token)}")
        return record is not None and not self.grant_revoked(record["gid"])

    def find_token(self, token_string: str) -> IssuedToken | None:
        key = digest(token_string)
        for kind, prefix in (("refresh_token", "rt"), ("access_token", "at")):
            record = self.store.get(f"{prefix}:{key}")
            if record is not None:
                return IssuedToken(key, kind, record["client_id"], record["gid"], record=record)
        return None

    def revoke(self, token: IssuedToken) -> None:
        """RFC 7009: revoking a refresh token ends its grant; an access token, itself."""
        if token.kind == "refresh_token":
            self.store.delete(f"rt:{token.key}")
            self.revoke_grant(token.gid, self._owner_of(token))
        else:
            self.store.delete(f"at:{token.key}")

    # -- back-channel logout (OIDC Back-Channel Logout 1.0) ---------------------------

    def end_session(self, sid: str, sub: str) -> None:
        """A provider session ended: tell every client that got tokens in it."""
        if not sid:
            return
        told = [
            client_id
            for client_id in self.clients
            if self.store.take(f"sess_client:{sid}:{client_id}") is not None
        ]
        self.send_logout(sid, sub, told)

    def send_logout(self, sid: str, sub: str, client_ids: list[str]) -> None:
        """Sign a Logout Token for each client that registered a back-channel logout
        URI, and hand them to the background delivery."""
        now = time.time()  # the receiver checks `iat`/`exp` against real time
        notices = [
            LogoutNotice(
                client.client_id,
                client.backchannel_logout_uri,
                logout_token(self.keys, self.issuer, client.client_id, sub=sub, sid=sid, now=now),
            )
            for client_id in dict.fromkeys(client_ids)
            if (client := self.clients.get(client_id)) and client.backchannel_logout_uri
        ]
        self.logout_delivery.send(notices)

    # -- pushed authorization requests (RFC 9126) --------------------------------

    def push_request(self, client_id: str, params: list[tuple[str, str]]) -> str:
        """Keep a validated authorization request; its `request_uri`."""
        handle = secrets.token_urlsafe(32)
        record = {
            "client_id": client_id,
            "params": params,
            "expires_at": self.clock() + PAR_TTL,
        }
        # The store's own expiry is a backstop; `expires_at` (the clock's) decides.
        self.store.put(f"par:{digest(handle)}", record, PAR_TTL + 60)
        return REQUEST_URI_PREFIX + handle

    def take_pushed_request(self, request_uri: str, client_id: str) -> list[tuple[str, str]]:
        """The pushed parameters, once: for the client that pushed them, before they expire.

        Raises `InvalidRequestUriError` otherwise; a wrong client does not use it up.
        """
        handle = request_uri.removeprefix(REQUEST_URI_PREFIX)
        key = f"par:{digest(handle)}"
        record = self.store.get(key) if request_uri.startswith(REQUEST_URI_PREFIX) else None
        if record is None:
            raise InvalidRequestUriError("Unknown or already used 'request_uri'.")
        if not secrets.compare_digest(record["client_id"].encode(), client_id.encode()):
            raise InvalidRequestUriError("This 'request_uri' was pushed by another client.")
        if self.store.take(key) is None:  # one use, even if two tabs race
            raise InvalidRequestUriError("Unknown or already used 'request_uri'.")
        if record["expires_at"] <= self.clock():
            raise InvalidRequestUriError("This 'request_uri' has expired.")
        return [(str(name), str(value)) for name, value in record["params"]]

    # -- discovery ---------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        auth_methods = CLIENT_AUTH_METHODS
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "userinfo_endpoint": self.url("/userinfo"),
            "jwks_uri": self.url("/.well-known/jwks.json"),
            "end_session_endpoint": self.url("/logout"),
            "revocation_endpoint": self.url("/revoke"),
            # RP-Initiated Logout 1.0 only: id_token_hint, or client_id + logout_hint
            # (the user's `sub`), post_logout_redirect_uri (registered), state.
            "frontchannel_logout_supported": False,
            # Back-Channel Logout 1.0: a Logout Token with `sid` and `sub` to each client
            # with a `backchannel_logout_uri`, at logout and when a grant is revoked.
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            # RFC 9126
            "pushed_authorization_request_endpoint": self.url("/par"),
            "require_pushed_authorization_requests": self.settings.require_par,
            # RFC 9207: `iss` in every authorization response, success or error.
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": self.scopes,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "code_challenge_methods_supported": ["S256"],
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
