"""AuthState: sign-in, the callback, the session as the page sees it, sign-out.

Everything secret stays on the server: the pending login (state, nonce, PKCE
verifier) in a backend-only var of this tab's state, the tokens in the server
session (`pingapp.auth.session`). The page gets the user's name, email, picture,
claims, granted scopes and expiry time — never a token.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

import reflex as rx

from pingapp.auth import oidc
from pingapp.auth.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    LoginRecord,
    ServerSession,
    digest,
    new_secret,
    read_cookie,
    vault,
)
from pingapp.http import shared_client
from pingapp.routes import CALLBACK, HOME
from pingapp.settings import backend_url, frontend_url, get_settings

logger = logging.getLogger(__name__)

#: A login not finished within this many seconds must start again.
LOGIN_TIMEOUT = 600
#: Refresh the access token when it has less than this many seconds left.
REFRESH_MARGIN = 30


def navigate(url: str) -> rx.event.EventSpec:
    """A full page load of `url`, replacing the current history entry.

    `rx.redirect` navigates inside the single-page app when the host is the same,
    which never reaches the backend's routes (/idp, /auth) in one-port set-ups.
    """
    return rx.call_script(f"window.location.replace({json.dumps(url)})")


class AuthState(rx.State):
    """Who is signed in in this tab, as the page may show it."""

    signed_in: bool = False
    user_name: str = ""
    user_email: str = ""
    user_picture: str = ""
    scopes: list[str] = []  # noqa: RUF012 - Reflex copies defaults per instance
    #: Epoch seconds at which the access token expires.
    expires_at: int = 0
    #: The ID token's claims and the provider's profile, as indented JSON.
    claims_json: str = ""
    #: The access token as the token inspector shows it: decoded, never raw.
    token_header: str = ""
    token_claims: str = ""
    token_audience: list[str] = []  # noqa: RUF012
    #: False when the provider issued an opaque (non-JWT) access token.
    token_is_jwt: bool = True
    error_title: str = ""
    error_detail: str = ""
    #: A login or logout is on its way (the buttons show a spinner).
    busy: bool = False

    #: digest() of the session id this tab shows; the id itself is only in the cookie.
    _session_hash: str = ""

    # --- what the page shows ----------------------------------------------------

    def _show(self, session: ServerSession | None) -> None:
        if session is None:
            self.signed_in = False
            self.user_name = self.user_email = self.user_picture = self.claims_json = ""
            self.token_header = self.token_claims = ""
            self.scopes = self.token_audience = []
            self.token_is_jwt = True
            self.expires_at = 0
            return
        decoded = oidc.peek(session.access_token)
        self.token_is_jwt = decoded is not None
        header, claims = decoded or ({}, {})
        self.token_header = json.dumps(header, indent=2, sort_keys=True)
        self.token_claims = json.dumps(claims, indent=2, sort_keys=True)
        audience = claims.get("aud", [])
        self.token_audience = [audience] if isinstance(audience, str) else list(audience)
        profile = {**session.claims, **session.profile}
        self.signed_in = True
        self.user_name = str(
            profile.get("name") or profile.get("nickname") or profile.get("sub", "")
        )
        self.user_email = str(profile.get("email", ""))
        self.user_picture = str(profile.get("picture", ""))
        self.scopes = session.scope.split()
        self.expires_at = int(session.expires_at)
        self.claims_json = json.dumps(profile, indent=2, sort_keys=True, default=str)

    def _fail(self, error: oidc.LoginError) -> None:
        self.busy = False
        self.error_title = error.title
        self.error_detail = error.detail
        logger.info("sign-in failed: %s (%s)", error.title, error.code or "no code")

    @rx.var
    def audience_missing(self) -> bool:
        """True when no audience is asked for: the API cannot verify the token."""
        return get_settings().auth_audience is None

    # --- events ------------------------------------------------------------------

    # --- this connection's session ---------------------------------------------------

    def _cookie_digest(self, name: str) -> str:
        """digest() of one of our cookies, as sent with this connection's handshake.

        Reflex takes the headers from the websocket handshake on the server side,
        so a client cannot set them per event, and a stolen client token brings no
        cookie along. The app hashes our cookies in the handshake before Reflex
        sees them (`digest_our_cookies`): no state file holds a cookie's value."""
        secure = frontend_url().startswith("https://")
        return read_cookie(self.router.headers.cookie, name, secure=secure)

    def _connection_session_hash(self) -> str:
        """The session this connection may act for: the one its cookie names, and
        only if this tab shows that same session (or none yet). '' otherwise."""
        session_hash = self._cookie_digest(SESSION_COOKIE)
        if not session_hash:
            return ""
        if self._session_hash and not hmac.compare_digest(session_hash, self._session_hash):
            return ""
        return session_hash

    async def _session(self) -> tuple[str, ServerSession] | None:
        """This connection's live session and its hash, or None (SECURITY.md 25)."""
        session_hash = self._connection_session_hash()
        session = await vault().load(session_hash)
        return (session_hash, session) if session else None

    # --- events ------------------------------------------------------------------

    @rx.event
    async def restore(self):
        """On every page load: pick up the session this browser's cookie names."""
        self.busy = False  # a page load ends any navigation a login or logout began
        self._session_hash = self._cookie_digest(SESSION_COOKIE)
        session = await vault().load(self._session_hash)
        if session and 0 < session.expires_at < time.time() and not session.refresh_token:
            await vault().end(self._session_hash)
            self.error_title = "Your session has expired"
            self.error_detail = "Log in again to continue."
            session = None
        if session is None:
            self._session_hash = ""
        else:
            client_token = self.router.session.client_token
            if client_token not in session.tabs:
                async with vault().modify(self._session_hash) as stored:
                    if stored is not None:
                        stored.tabs = [*stored.tabs[-19:], client_token]
        self._show(session)

    @rx.event
    async def login(self, return_to: str = ""):
        """Send the browser to the provider, remembering where to come back to."""
        async for update in self._start_login(return_to, prompt=None):
            yield update

    @rx.event
    async def review_permissions(self):
        """Sign in again with the provider's consent page, to grant what is missing."""
        async for update in self._start_login("", prompt="consent"):
            yield update

    @rx.event
    async def sign_in_recently(self):
        """Step-up (RFC 9470): sign in again, asking the provider for a sign-in at most
        API_RECENT_AUTH_MAX_AGE seconds old (`max_age`); the callback checks it."""
        max_age = get_settings().api_recent_auth_max_age
        async for update in self._start_login("", prompt=None, max_age=max_age):
            yield update

    async def _start_login(self, return_to: str, prompt: str | None, max_age: int | None = None):
        self.busy = True
        self.error_title = self.error_detail = ""
        yield
        settings = get_settings()
        try:
            metadata = await oidc.discover(
                shared_client(), settings.effective_issuer(backend_url())
            )
        except oidc.LoginError as error:
            self._fail(error)
            return
        pending = oidc.new_pending_login(
            redirect_uri=frontend_url() + CALLBACK,
            return_to=return_to or self.router.url.path or HOME,
            max_age=max_age,
        )
        try:
            if oidc.uses_par(metadata, settings):
                # RFC 9126: the request goes to the provider directly; the browser's
                # URL carries only client_id and request_uri.
                url = await oidc.pushed_authorization_url(
                    shared_client(), metadata, settings, pending, prompt=prompt
                )
            else:
                url = oidc.authorization_url(metadata, settings, pending, prompt=prompt)
        except oidc.LoginError as error:
            self._fail(error)
            return
        record = LoginRecord(login=pending, authorize_url=url)
        # The browser fetches its login cookie over HTTP (a websocket cannot set
        # one); the one-time handle lets only that request continue this login.
        handle = new_secret()
        await vault().put_login(handle, record)
        yield navigate(f"{backend_url()}/auth/login?tx={handle}")

    @rx.event
    async def require_sign_in(self):
        """Page guard: a signed-out visitor goes to the provider and comes back here."""
        if not self.signed_in and not self.busy:
            return AuthState.login(self.router.url.path)
        return None

    @rx.event
    async def handle_callback(self):
        """The provider sent the browser back: finish the login, or explain why not."""
        params = dict(self.router.url.query_parameters)
        self.busy = True
        self.error_title = self.error_detail = ""
        # The code and state leave the address bar (and so the history) at once.
        yield rx.call_script(f"window.history.replaceState(null, '', {json.dumps(CALLBACK)})")
        try:
            # One use: whatever happens next, this pending login is spent.
            record = await vault().take_login(str(params.get("state", "")))
            session_id = await self._finish_login(record, params)
        except oidc.LoginError as error:
            self._fail(error)
            return
        except Exception:
            logger.exception("unexpected failure while finishing a sign-in")
            self._fail(
                oidc.LoginError(
                    "Sign-in failed",
                    "Something unexpected went wrong while finishing the sign-in. "
                    "Press Log In to try again.",
                )
            )
            return
        assert record is not None  # _finish_login refuses a missing one
        ticket = await vault().issue_ticket(
            session_id, record.login.return_to, browser=record.browser
        )
        yield navigate(f"{backend_url()}/auth/session?ticket={ticket}")

    async def _finish_login(self, record: LoginRecord | None, params: dict[str, Any]) -> str:
        """Check the callback, trade the code, store the session; its id is returned."""
        # `state` first (SECURITY.md 14, 31, 36): an answer that belongs to no login
        # this browser started gets a generic message, whatever else it carries.
        browser = self._cookie_digest(LOGIN_COOKIE)
        if record is None or not browser or not hmac.compare_digest(browser, record.browser):
            raise oidc.LoginError(
                "This sign-in cannot be finished here",
                "The answer from the provider does not belong to a login started in this "
                "browser, or was already used. Press Log In to start again.",
                code="bad_state",
            )
        pending = record.login
        settings = get_settings()
        client = shared_client()
        metadata = await oidc.discover(client, settings.effective_issuer(backend_url()))
        # RFC 9207: the answer names its issuer; a different one is a mix-up attack.
        # Required whenever the provider says it sends it.
        iss = params.get("iss")
        promised = metadata.get("authorization_response_iss_parameter_supported") is True
        if (iss is not None and iss != metadata["issuer"]) or (promised and iss is None):
            raise oidc.LoginError(
                "The answer came from another provider",
                "The sign-in response does not name this app's provider as its issuer. "
                "Press Log In to try again.",
                code="issuer_mismatch",
            )
        if params.get("error"):
            raise oidc.describe_provider_error(
                str(params["error"]), str(params.get("error_description", ""))
            )
        if time.time() - pending.started_at > LOGIN_TIMEOUT:
            raise oidc.LoginError(
                "The sign-in took too long", "Press Log In to start again.", code="expired"
            )
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise oidc.LoginError(
                "The provider sent no code", "Press Log In to try again.", code="no_code"
            )
        tokens = await oidc.exchange_code(client, metadata, settings, pending, code)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise oidc.LoginError(
                "The provider sent no ID token",
                "AUTH_SCOPE must include 'openid'. Check the provider's application settings.",
                code="no_id_token",
            )
        claims = await oidc.validate_id_token(
            client, metadata, settings, id_token, nonce=pending.nonce, max_age=pending.max_age
        )
        profile = await oidc.fetch_userinfo(client, metadata, tokens["access_token"])
        if profile.get("sub") not in (None, claims["sub"]):
            profile = {}  # OIDC Core 5.3.2: a userinfo for someone else is ignored
        # A new id at every sign-in (SECURITY.md 20): the old session ends here.
        await vault().end(self._cookie_digest(SESSION_COOKIE))
        session = ServerSession(
            access_token=tokens["access_token"],
            refresh_token=str(tokens.get("refresh_token", "")),
            id_token=id_token,
            expires_at=time.time() + float(tokens.get("expires_in", 0) or 0),
            scope=str(tokens.get("scope") or settings.auth_scope),
            claims=claims,
            profile=profile,
            tabs=[self.router.session.client_token],
        )
        session_id = await vault().create(session)
        self._session_hash = digest(session_id)
        self._show(session)
        return session_id

    @rx.event
    async def logout(self):
        """End the session everywhere, then at the provider."""
        current = await self._session()
        self.busy = True
        yield
        ended = await vault().end(current[0]) if current else None
        self._session_hash = ""
        self._show(None)
        self.busy = False
        if ended:
            await sign_out_tabs(ended.tabs, except_token=self.router.session.client_token)
        settings = get_settings()
        try:
            metadata = await oidc.discover(
                shared_client(), settings.effective_issuer(backend_url())
            )
        except oidc.LoginError:
            yield rx.redirect(HOME)  # signed out here; the provider is unreachable
            return
        if ended and ended.refresh_token:
            await revoke_quietly(metadata, ended.refresh_token)
        # No ID token in a URL the browser sees (SECURITY.md 19, 24): the provider
        # learns who is leaving from `client_id` and `logout_hint`.
        url = oidc.logout_url(
            metadata,
            settings,
            logout_hint=str(ended.claims["sub"]) if ended and "sub" in ended.claims else None,
            return_to=frontend_url() + "/",
        )
        if url and not await oidc.reachable(shared_client(), url):
            # Sending the browser there would strand it on an error page.
            self.error_title = "Signed out of pingapp only"
            self.error_detail = (
                "The sign-in provider could not be reached, so your session there may "
                "still be open. Log out again later to end it."
            )
            url = None
        yield navigate(url) if url else rx.redirect(HOME)

    @rx.event
    def dismiss_error(self):
        self.error_title = self.error_detail = ""

    # --- for other states (PingState) ---------------------------------------------
    # Private (a leading underscore): Reflex never exposes these as events.

    async def _access_token(self, *, rejected: str | None = None) -> str | None:
        """A valid access token for this connection's session, refreshed when about
        to expire or when the API just `rejected` it.

        Returns None (and shows the signed-out page) when the connection carries no
        session cookie for this tab's session, or the session cannot be renewed.
        """
        current = await self._session()  # the fast path reads without the lock
        if current is None:
            self._session_hash = ""
            self._show(None)
            return None
        session_hash, session = current
        if rejected is None and not _expiring(session):
            return session.access_token
        async with vault().modify(session_hash) as session:
            # The lock is held: one refresh at a time per session, on every worker.
            # Whoever waited for it finds the fresh token and uses it.
            if session is None:
                self._show(None)
                return None
            stale = session.access_token == rejected or (rejected is None and _expiring(session))
            if not stale:
                return session.access_token
            if not session.refresh_token:
                if rejected is None and 0 < session.expires_at < time.time():
                    session.access_token = ""  # saved as ended: the record goes
                    self._show(None)
                    self.error_title = "Your session has expired"
                    self.error_detail = "Log in again to continue."
                    return None
                return None if rejected else session.access_token
            settings = get_settings()
            client = shared_client()
            try:
                metadata = await oidc.discover(client, settings.effective_issuer(backend_url()))
                tokens = await oidc.refresh_tokens(
                    client, metadata, settings, session.refresh_token
                )
            except oidc.GrantRejected:
                session.access_token = ""
                self._show(None)
                self.error_title = "Your session has ended"
                self.error_detail = "The provider no longer accepts it. Log in again."
                return None
            except oidc.LoginError:
                # Provider down or slow: keep the session, use the token while it lasts.
                usable = rejected is None and session.expires_at > time.time()
                return session.access_token if usable else None
            session.access_token = tokens["access_token"]
            session.refresh_token = str(tokens.get("refresh_token") or session.refresh_token)
            session.expires_at = time.time() + float(tokens.get("expires_in", 0) or 0)
            session.scope = str(tokens.get("scope") or session.scope)
            if isinstance(tokens.get("id_token"), str):
                session.id_token = tokens["id_token"]
            self._show(session)
            return session.access_token


async def revoke_quietly(metadata: dict[str, Any], refresh_token: str) -> None:
    """Revoke a refresh token at the provider (RFC 7009); a failure is only logged."""
    try:
        await oidc.revoke(shared_client(), metadata, get_settings(), refresh_token)
    except oidc.LoginError as error:
        logger.info("could not revoke the refresh token: %s", error.title)


def _expiring(session: ServerSession) -> bool:
    return bool(session.expires_at) and session.expires_at - REFRESH_MARGIN <= time.time()


async def sign_out_tabs(tabs: list[str], except_token: str = "") -> None:
    """Show the signed-out page in the session's other open tabs, now."""
    from reflex.utils.prerequisites import get_app

    app = get_app().app
    for client_token in tabs:
        if client_token == except_token:
            continue
        try:
            token = rx.BaseStateToken(ident=client_token, cls=AuthState)
            async with app.modify_state(token) as root:
                other = await root.get_state(AuthState)
                other._session_hash = ""
                other._show(None)
        except Exception:  # a closed tab must not stop the logout
            logger.debug("could not update a closed tab", exc_info=True)
