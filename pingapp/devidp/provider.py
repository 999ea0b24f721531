"""The embedded provider: authlib's authorization server wired to its records and keys.

`Provider` holds the configuration (issuer, clients, audiences, scopes, users), the
signing keys and the records (`records.py`), builds authlib's server with this
provider's grants (`grants.py`) and token endpoints (`tokens.py`), and keeps what
they issue: codes (single-use; a replay revokes the grant, docs/security.md item 27),
access and refresh tokens (rotated; reuse revokes the grant; DPoP-bound, `proofs.py`),
pushed authorization requests (RFC 9126, `par.py`). Ending a session or revoking a
grant sends Logout Tokens (`backchannel.py`). `clock` decides every expiry the
provider keeps itself.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oidc.core import UserInfo

from pingapp.devidp import records as r
from pingapp.devidp.adapter import Server, client_of, dpop_jkt_of, payload_of, subject_of
from pingapp.devidp.backchannel import LogoutDelivery, LogoutNotice, logout_token
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.grants import (
    CodeGrant,
    IdTokenOnCode,
    IdTokenOnRefresh,
    RefreshGrant,
    S256Challenge,
)
from pingapp.devidp.keys import SigningKeys
from pingapp.devidp.models import AuthorizationCode, Client, IssuedToken, Subject
from pingapp.devidp.par import PushedRequests
from pingapp.devidp.proofs import Proofs
from pingapp.devidp.records import Records, digest
from pingapp.devidp.storage import Store
from pingapp.devidp.throttle import SignInThrottle
from pingapp.devidp.tokens import (
    AccessTokens,
    AccessTokenValidator,
    EndSession,
    Revocation,
    UserInfoAdapter,
)

log = logging.getLogger("pingapp.devidp")

STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")


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
        trusted_proxies: Sequence[IPv4Network | IPv6Network] = (),
    ) -> None:
        self.issuer = issuer.rstrip("/")
        #: Proxies whose `X-Forwarded-For` names the client the sign-in throttle counts.
        self.trusted_proxies = tuple(trusted_proxies)
        #: Every expiry the provider keeps, sign-in times, `max_age` and the throttle.
        self.clock = clock
        self.logout_delivery = logout_delivery or LogoutDelivery()
        self.settings = settings
        self.clients = {client.client_id: client for client in clients}
        self.audiences = list(dict.fromkeys(audiences))
        self.scopes = list(dict.fromkeys([*STANDARD_SCOPES, *scopes]))
        self.store = store
        self.records = Records(store, clock)
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
        self.access_tokens = AccessTokens(self)
        self.access_validator = AccessTokenValidator(self)
        self.server = self._build_server()
        self.pushed = PushedRequests(self)
        self.proofs = Proofs(self)

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def _build_server(self) -> Server:
        server = Server(self)
        server.register_token_generator("default", self.access_tokens)
        server.register_grant(CodeGrant, [S256Challenge(required=True), IdTokenOnCode(self)])
        server.register_grant(RefreshGrant, [IdTokenOnRefresh(self)])
        server.register_endpoint(Revocation)
        server.register_endpoint(EndSession)
        protector = ResourceProtector()
        protector.register_token_validator(self.access_validator)
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

    # -- authorization codes (docs/security.md item 27) -----------------------------

    def save_code(self, code: str, request: OAuth2Request) -> None:
        subject = subject_of(request)
        client = client_of(request)
        payload = payload_of(request)
        data = payload.data
        record = AuthorizationCode(
            client_id=client.client_id,
            redirect_uri=payload.redirect_uri,
            # The scope the user consented to, which may be less than asked for.
            scope=getattr(request, "granted_scope", None) or request.scope,
            subject=subject,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            nonce=data.get("nonce"),
            dpop_jkt=data.get("dpop_jkt"),
        )
        settings = self.settings
        self.records.put(r.CODES, record, digest(code), ttl=settings.code_ttl)
        if subject.sid:
            # This client got tokens in this provider session: it hears of its end.
            # One record per client, so two sign-ins at once cannot lose one.
            key = (subject.sid, client.client_id)
            self.records.put(r.SESSION_CLIENTS, r.Marker(), *key, ttl=settings.session_ttl)
        if nonce := data.get("nonce"):
            key = (client.client_id, digest(nonce))
            self.records.put(r.NONCES, r.Marker(), *key, ttl=settings.id_token_ttl)

    def take_code(self, code: str, client: Client) -> AuthorizationCode | None:
        """The code's record, removed: a code works once, for its client, within its TTL."""
        key = digest(code)
        stored = self.records.read(r.CODES, key, remove=True)
        if stored is None:
            if used := self.records.get(r.USED_CODES, key):
                log.warning("authorization code used twice: revoking its grant")
                self.revoke_grant(used)
            return None
        found = stored.record
        owner = self._owner(found.subject.gid, found.client_id, found.subject)
        self.records.put(r.USED_CODES, owner, key, ttl=self.settings.refresh_token_ttl)
        if found.client_id != client.client_id or self.records.live(stored) is None:
            return None
        return found

    def holds_grant(self, form: list[tuple[str, str]]) -> bool:
        """Whether a token request names a code or a refresh token held here (live,
        or used: a replay revokes its grant), so that it could get tokens."""
        values = dict(form)
        tables = {
            "authorization_code": ("code", r.CODES, r.USED_CODES),
            "refresh_token": ("refresh_token", r.REFRESH_TOKENS, r.USED_REFRESH_TOKENS),
        }.get(values.get("grant_type", ""))
        if tables is None or not (secret := values.get(tables[0])):
            return False
        key = digest(secret)
        return any(self.records.has(table, key) for table in tables[1:])

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        return self.records.has(r.NONCES, client_id, digest(nonce))

    # -- grants and tokens -----------------------------------------------------

    @staticmethod
    def _owner(gid: str, client_id: str, subject: Subject) -> r.GrantOwner:
        """What revoking a grant later needs: whom to tell (client, user, session)."""
        return r.GrantOwner(gid, client_id, subject.username, subject.sid)

    def revoke_grant(self, owner: r.GrantOwner) -> None:
        """End a grant; the first time, tell its client by back-channel logout when
        `owner` names the client and the provider session."""
        if self.grant_revoked(owner.gid):
            return
        self.records.put(
            r.REVOKED_GRANTS, r.Marker(), owner.gid, ttl=self.settings.refresh_token_ttl
        )
        if owner.sid and owner.client_id:
            self.send_logout(owner.sid, owner.sub, [owner.client_id])

    def grant_revoked(self, gid: str) -> bool:
        return self.records.has(r.REVOKED_GRANTS, gid)

    def save_tokens(self, token: dict[str, Any], request: OAuth2Request) -> None:
        subject = subject_of(request)
        previous = request.refresh_token
        now = int(self.clock())
        if not isinstance(previous, IssuedToken):  # a new grant, from a code
            subject = replace(subject, grant_expires=now + self.settings.refresh_token_ttl)
        client = client_of(request)
        client_id = client.client_id
        access = r.AccessRecord(subject.gid, client_id)
        key = digest(token["access_token"])
        self.records.put(r.ACCESS_TOKENS, access, key, ttl=self.settings.access_token_ttl)
        if refresh := token.get("refresh_token"):
            # A rotated refresh token keeps the scope of the grant, not of this request.
            scope = previous.scope if isinstance(previous, IssuedToken) else token["scope"]
            # RFC 9449 section 5: a public client's, bound to its DPoP key (if any).
            jkt = (dpop_jkt_of(request) or "") if client.secret is None else ""
            record = r.RefreshRecord(subject.gid, client_id, scope, subject, jkt)
            ttl = subject.grant_expires - now
            if ttl > 0:
                self.records.put(r.REFRESH_TOKENS, record, digest(refresh), ttl=ttl)

    def find_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        key = digest(refresh_token)
        record = self.records.get(r.REFRESH_TOKENS, key)
        if record is None:
            if used := self.records.get(r.USED_REFRESH_TOKENS, key):
                log.warning("refresh token reused: revoking its grant")
                self.revoke_grant(used)
            return None
        if self.grant_revoked(record.gid):
            return None
        return record.issued(key)

    def _owner_of(self, token: IssuedToken) -> r.GrantOwner:
        if token.subject is None:
            return r.GrantOwner(token.gid)
        return self._owner(token.gid, token.client_id, token.subject)

    def claim_refresh_token(self, token: IssuedToken) -> bool:
        owner = self._owner_of(token)
        if self.records.take(r.REFRESH_TOKENS, token.key) is None:
            self.revoke_grant(owner)
            return False
        ttl = self.settings.refresh_token_ttl
        self.records.put(r.USED_REFRESH_TOKENS, owner, token.key, ttl=ttl)
        return True

    def access_token_active(self, access_token: str) -> bool:
        record = self.records.get(r.ACCESS_TOKENS, digest(access_token))
        return record is not None and not self.grant_revoked(record.gid)

    def find_token(self, token_string: str) -> IssuedToken | None:
        key = digest(token_string)
        if refresh := self.records.get(r.REFRESH_TOKENS, key):
            return refresh.issued(key)
        if access := self.records.get(r.ACCESS_TOKENS, key):
            return IssuedToken(key, "access_token", access.client_id, access.gid)
        return None

    def revoke(self, token: IssuedToken) -> None:
        """RFC 7009: revoking a refresh token ends its grant; an access token, itself."""
        if token.kind == "refresh_token":
            self.records.delete(r.REFRESH_TOKENS, token.key)
            self.revoke_grant(self._owner_of(token))
        else:
            self.records.delete(r.ACCESS_TOKENS, token.key)

    # -- back-channel logout (OIDC Back-Channel Logout 1.0) ---------------------------

    def end_session(self, sid: str, sub: str) -> None:
        """A provider session ended: tell every client that got tokens in it."""
        if not sid:
            return
        told = [
            client_id
            for client_id in self.clients
            if self.records.take(r.SESSION_CLIENTS, sid, client_id) is not None
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
