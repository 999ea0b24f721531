"""AuthState: sign-in, the callback, the session as the page sees it, sign-out.

Everything secret stays on the server: the pending login (state, nonce, PKCE
verifier, DPoP key) and the tokens in the vault (`pingapp.auth.session`). The page
gets the user's name, email, picture, claims, scopes, expiry and DPoP binding —
never a token or key. Shared objects come from `pingapp.context`.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from datetime import UTC, datetime

import reflex as rx

from pingapp.auth.cookies import LOGIN_COOKIE, SESSION_COOKIE, digest, new_secret, read_cookie
from pingapp.auth.errors import LoginError
from pingapp.auth.flow import end_at_provider, finish_login
from pingapp.auth.id_token import peek
from pingapp.auth.login import new_pending_login
from pingapp.auth.refresh import Outcome, TokenOutcome, current_token, expired
from pingapp.auth.session import LoginRecord, ServerSession
from pingapp.context import context
from pingapp.http import Credential
from pingapp.routes import CALLBACK, HOME
from pingapp.settings import get_settings

logger = logging.getLogger(__name__)


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
    #: When the access token expires: ISO 8601 for `<time datetime>`, and in words.
    expires_iso: str = ""
    expires_text: str = ""
    #: The ID token's claims and the provider's profile, as indented JSON.
    claims_json: str = ""
    #: The access token as the token inspector shows it: decoded, never raw.
    token_header: str = ""
    token_claims: str = ""
    token_audience: list[str] = []  # noqa: RUF012
    #: False when the provider issued an opaque (non-JWT) access token.
    token_is_jwt: bool = True
    #: The thumbprint of the DPoP key the access token is bound to; '' for bearer.
    token_jkt: str = ""
    error_title: str = ""
    error_detail: str = ""
    #: A login or logout is on its way (the buttons show a spinner).
    busy: bool = False

    #: digest() of the session id this tab shows; the id itself is only in the cookie.
    _session_hash: str = ""

    # --- what the page shows ----------------------------------------------------

    def _show(self, session: ServerSession | None) -> None:
        if session is None:
            self.signed_in, self.token_is_jwt = False, True
            self.expires_iso = self.expires_text = ""
            self.user_name = self.user_email = self.user_picture = self.claims_json = ""
            self.token_header = self.token_claims = self.token_jkt = ""
            self.scopes = self.token_audience = []
            return
        decoded = peek(session.access_token)
        self.token_is_jwt = decoded is not None
        self.token_jkt = session.dpop_jkt
        header, claims = decoded or ({}, {})
        self.token_header = json.dumps(header, indent=2, sort_keys=True)
        self.token_claims = json.dumps(claims, indent=2, sort_keys=True)
        audience = claims.get("aud", [])
        self.token_audience = [audience] if isinstance(audience, str) else list(audience)
        profile = {**session.claims, **session.profile}
        self.signed_in = True
        name = profile.get("name") or profile.get("nickname") or profile.get("sub", "")
        self.user_name = str(name)
        self.user_email = str(profile.get("email", ""))
        self.user_picture = str(profile.get("picture", ""))
        self.scopes = session.scope.split()
        expires = datetime.fromtimestamp(int(session.expires_at), UTC)
        self.expires_iso = expires.isoformat()
        self.expires_text = expires.strftime("%Y-%m-%d %H:%M:%S UTC")
        self.claims_json = json.dumps(profile, indent=2, sort_keys=True, default=str)

    def _signed_out(self, title: str = "", detail: str = "") -> None:
        """Show the signed-out page (with an explanation, if given)."""
        self._session_hash = ""
        self._show(None)
        if title:
            self.error_title, self.error_detail = title, detail

    def _render(self, outcome: TokenOutcome) -> None:
        """What the page shows of a token outcome (`pingapp.auth.refresh`)."""
        if outcome.kind is Outcome.EXPIRED:
            self._signed_out("Your session has expired", "Log in again to continue.")
        elif outcome.kind is Outcome.REVOKED:
            self._signed_out(
                "Your session has ended", "The provider no longer accepts it. Log in again."
            )
        elif outcome.kind is Outcome.NO_SESSION:
            self._signed_out()
        elif outcome.kind is Outcome.REFRESHED:
            self._show(outcome.session)

    def _fail(self, error: LoginError) -> None:
        self.busy = False
        self.error_title = error.title
        self.error_detail = error.detail
        logger.info("sign-in failed: %s (%s)", error.title, error.code or "no code")

    @rx.var
    def audience_missing(self) -> bool:
        """True when no audience is asked for: the API cannot verify the token."""
        return get_settings().auth_audience is None

    # --- this connection's session ---------------------------------------------------

    def _cookie_digest(self, name: str) -> str:
        """digest() of one of our cookies, from this connection's websocket handshake
        (server-side: a client cannot set it per event, a stolen client token brings
        no cookie; `digest_our_cookies` hashes our cookies before Reflex sees them)."""
        return read_cookie(self.router.headers.cookie, name, secure=context().secure)

    def _connection_session_hash(self) -> str:
        """The session this connection may act for: the one its cookie names, and
        only if this tab shows that same session (or none yet). '' otherwise."""
        session_hash = self._cookie_digest(SESSION_COOKIE)
        if not session_hash:
            return ""
        if self._session_hash and not hmac.compare_digest(session_hash, self._session_hash):
            return ""
        return session_hash

    # --- events ------------------------------------------------------------------

    @rx.event
    async def restore(self):
        """On every page load: pick up the session this browser's cookie names."""
        vault = context().vault
        self.busy = False  # a page load ends any navigation a login or logout began
        self._session_hash = self._cookie_digest(SESSION_COOKIE)
        session = await vault.load(self._session_hash)
        if session and expired(session, time.time()):
            await vault.end(self._session_hash)
            self._signed_out("Your session has expired", "Log in again to continue.")
            return
        if session is None:
            self._signed_out()
            return
        client_token = self.router.session.client_token
        if client_token not in session.tabs:
            async with vault.modify(self._session_hash) as stored:
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
        max_age = context().settings.api_recent_auth_max_age
        async for update in self._start_login("", prompt=None, max_age=max_age):
            yield update

    async def _start_login(self, return_to: str, prompt: str | None, max_age: int | None = None):
        self.busy = True
        self.error_title = self.error_detail = ""
        yield
        ctx = context()
        pending = new_pending_login(
            redirect_uri=ctx.frontend_url + CALLBACK,
            return_to=return_to or self.router.url.path or HOME,
            max_age=max_age,
        )
        try:
            # A new key for every sign-in (AUTH_DPOP), kept with the pending login.
            key = await ctx.oidc.new_dpop_key()
            url = await ctx.oidc.authorization_url(pending, prompt=prompt)
        except LoginError as error:
            self._fail(error)
            return
        # The browser fetches its login cookie over HTTP (a websocket cannot set
        # one); the one-time handle lets only that request continue this login.
        handle = new_secret()
        record = LoginRecord(login=pending, authorize_url=url, dpop_key=key)
        await ctx.vault.put_login(handle, record)
        yield navigate(f"{ctx.backend_url}/auth/login?tx={handle}")

    @rx.event
    async def require_sign_in(self):
        """Page guard: a signed-out visitor goes to the provider and comes back here."""
        if not self.signed_in and not self.busy:
            return AuthState.login(self.router.url.path)
        return None

    @rx.event
    async def handle_callback(self):
        """The provider sent the browser back: finish the login, or explain why not."""
        ctx = context()
        params = dict(self.router.url.query_parameters)
        self.busy = True
        self.error_title = self.error_detail = ""
        # The code and state leave the address bar (and so the history) at once.
        yield rx.call_script(f"window.history.replaceState(null, '', {json.dumps(CALLBACK)})")
        try:
            # One use: whatever happens next, this pending login is spent.
            record = await ctx.vault.take_login(str(params.get("state", "")))
            session_id, session = await finish_login(
                ctx,
                record,
                params,
                browser=self._cookie_digest(LOGIN_COOKIE),
                replaces=self._cookie_digest(SESSION_COOKIE),
                tab=self.router.session.client_token,
            )
        except LoginError as error:
            self._fail(error)
            return
        except Exception:
            logger.exception("unexpected failure while finishing a sign-in")
            self._fail(
                LoginError(
                    "Sign-in failed",
                    "Something unexpected went wrong while finishing the sign-in. "
                    "Press Log In to try again.",
                )
            )
            return
        assert record is not None  # finish_login refuses a missing one
        self._session_hash = digest(session_id)
        self._show(session)
        ticket = await ctx.vault.issue_ticket(
            session_id, record.login.return_to, browser=record.browser
        )
        yield navigate(f"{ctx.backend_url}/auth/session?ticket={ticket}")

    @rx.event
    async def logout(self):
        """End the session everywhere, then at the provider."""
        ctx = context()
        session_hash = self._connection_session_hash()
        self.busy = True
        yield
        ended = await ctx.vault.end(session_hash)
        self._signed_out()
        self.busy = False
        if ended:
            await ctx.sign_out_tabs(ended.tabs, self.router.session.client_token)
        try:
            url, reached = await end_at_provider(ctx, ended)
        except LoginError:
            yield rx.redirect(HOME)  # signed out here; the provider is unreachable
            return
        if not reached:
            # Sending the browser there would strand it on an error page.
            self.error_title = "Signed out of pingapp only"
            self.error_detail = (
                "The sign-in provider could not be reached, so your session there may "
                "still be open. Log out again later to end it."
            )
        yield navigate(url) if url and reached else rx.redirect(HOME)

    @rx.event
    def dismiss_error(self):
        self.error_title = self.error_detail = ""

    async def _access_token(self, rejected: str | None = None) -> Credential | None:
        """For PingState (private: never an event): a valid access token (and its DPoP
        key) for this connection's session (`current_token`), or None; the page
        shows what happened (`_render`)."""
        ctx = context()
        outcome = await current_token(
            ctx.vault, ctx.oidc, self._connection_session_hash(), rejected=rejected
        )
        self._render(outcome)
        return outcome.credential
