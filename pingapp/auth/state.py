"""AuthState: sign-in, the callback, the session as the page sees it, sign-out.

Everything secret stays on the server: the pending login (state, nonce, PKCE
verifier, DPoP key) and the tokens in the vault (`pingapp.oidc.session`). The page
gets the user's name, email, picture, claims, scopes, expiry and DPoP binding —
never a token or key. Shared objects come from `pingapp.context`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

import reflex as rx

from pingapp import telemetry
from pingapp.auth.flow import end_at_provider, finish_login
from pingapp.context import context
from pingapp.oidc.cookies import HandshakeRefs
from pingapp.oidc.errors import LoginError
from pingapp.oidc.id_token import peek
from pingapp.oidc.refresh import Outcome, TokenOutcome, current_token, expired
from pingapp.oidc.session import ServerSession
from pingapp.outbound.http import Credential
from pingapp.routes import CALLBACK, HOME, LOGIN, SESSION_HOP
from pingapp.settings import get_settings

logger = logging.getLogger(__name__)


def login_url(
    backend_url: str, return_to: str = "", *, prompt: str = "", step_up: bool = False
) -> str:
    """The HTTP login step (`pingapp.auth.routes.start_login`): Log In, "grant
    access" and "sign in again" are plain links to it."""
    query = {"return_to": return_to, "prompt": prompt, "step_up": "1" if step_up else ""}
    given = urlencode({name: value for name, value in query.items() if value})
    return f"{backend_url}{LOGIN}?{given}" if given else backend_url + LOGIN


#: Seconds after Log Out sends a tab to the provider during which the tab's sign-in
#: guard (`require_sign_in`) does not send it to a login (`_leaving_until`).
LEAVING_GRACE = 30.0


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
    #: A full page load the server asks for ('' for none): `components.navigate`
    #: follows it without eval (the CSP has no 'unsafe-eval').
    next_url: str = ""
    #: The address bar's new URL, without a page load ('' for none).
    clean_url: str = ""

    #: `Vault.reference` of the session id this tab shows (the id is only in the cookie).
    _session_hash: str = ""
    #: Until when (epoch seconds) this tab is on its way to the provider's logout: a
    #: reconnect meanwhile re-runs the page's on_load, and its sign-in guard must not
    #: send the leaving tab to a login instead.
    _leaving_until: float = 0.0

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
        """What the page shows of a token outcome (`pingapp.oidc.refresh`)."""
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
        # Our own title; the code may come from the provider, so it is quoted (%r).
        logger.warning("sign-in failed: %s (code %r)", error.title, error.code[:60])

    @rx.var
    def audience_missing(self) -> bool:
        """True when no audience is asked for: the API cannot verify the token."""
        return get_settings().auth_audience is None

    # --- this connection's session ---------------------------------------------------

    def _refs(self) -> HandshakeRefs:
        """What the server computed from this connection's cookies at the websocket
        handshake (`pingapp.oidc.cookies.handshake_scope`): never a client's value."""
        return HandshakeRefs.from_header(self.router.headers.cookie)

    def _connection_session_hash(self) -> str:
        """The session this connection may act for: the one its cookie names, and
        only if this tab shows that same session (or none yet). '' otherwise."""
        session_hash = self._refs().session
        if not session_hash:
            return ""
        if self._session_hash and not hmac.compare_digest(session_hash, self._session_hash):
            return ""
        return session_hash

    async def _live_session(self) -> tuple[str, ServerSession] | None:
        """This connection's session, if it has one that has not expired."""
        session_hash = self._connection_session_hash()
        session = await context().vault.load(session_hash) if session_hash else None
        if session is None or expired(session, time.time()):
            return None
        return session_hash, session

    # --- events ------------------------------------------------------------------

    @rx.event
    async def restore(self):
        """On every page load: pick up the session this browser's cookie names."""
        vault = context().vault
        self.busy = False  # a page load ends any navigation a login or logout began
        self.next_url = self.clean_url = ""
        self._session_hash = self._refs().session
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
        # For the sessions list: at most one write a minute (docs/sessions.md).
        await vault.touch(self._session_hash, session)
        self._show(session)

    @rx.event
    def require_sign_in(self):
        """Page guard: a signed-out visitor goes to the login step and comes back here
        (nothing is stored or called until the browser gets there)."""
        if not self.signed_in and not self.busy and time.time() >= self._leaving_until:
            self.busy = True
            yield  # the page says "Taking you to sign in…" while the browser leaves
            self.next_url = login_url(context().backend_url, self.router.url.path)

    @rx.event
    async def handle_callback(self):
        """The provider sent the browser back: finish the login, or explain why not."""
        ctx = context()
        params = dict(self.router.url.query_parameters)
        if not params and (live := await self._live_session()):
            # A reconnect re-sends the page's on_load, the address already cleaned, after
            # the session hop set the cookie; the tab is on its way to the page after the
            # hop, and this state is that page's. Nothing to finish: no error (it would
            # show there), no navigation (it would cut the hop short). Opened by hand,
            # the page says the browser is signed in.
            if not self.signed_in:
                self._session_hash, session = live
                self._show(session)
            return
        self.busy = True
        self.error_title = self.error_detail = self.next_url = ""
        # The code and state leave the address bar (and so the history) at once.
        self.clean_url = CALLBACK
        yield
        refs = self._refs()
        address = self.router.session.client_ip
        step_up = False
        with contextlib.ExitStack() as traced:
            try:
                # One use: whatever happens next, this pending login is spent.
                record = await ctx.vault.take_login(str(params.get("state", "")))
                step_up = bool(record and record.login.max_age is not None)
                # The sign-in's trace, from /auth/login, continues here.
                trace = record.trace if record else ""
                traced.enter_context(telemetry.continued(trace, "pingapp.sign_in.callback"))
                session_id, session = await finish_login(
                    ctx,
                    record,
                    params,
                    browser=refs.login,
                    replaces=refs.session,
                )
            except LoginError as error:
                telemetry.sign_in_failed(
                    error.code or "login_error", address=address, step_up=step_up
                )
                self._fail(error)
                return
            except Exception:
                logger.exception("unexpected failure while finishing a sign-in")
                telemetry.sign_in_failed("unexpected", address=address, step_up=step_up)
                self._fail(
                    LoginError(
                        "Sign-in failed",
                        "Something unexpected went wrong while finishing the sign-in. "
                        "Press Log In to try again.",
                    )
                )
                return
            assert record is not None  # finish_login refuses a missing one
            telemetry.signed_in(
                user=str(session.claims.get("sub", "")),
                session=ctx.vault.reference(session_id),
                address=address,
                step_up=step_up,
            )
            # Nothing of the session goes into this tab's state: it is keyed without the
            # session cookie it lacks (docs/security.md 46). The page after the hop shows it.
            ticket = await ctx.vault.issue_ticket(
                session_id,
                record.login.return_to,
                browser=record.browser,
                trace=telemetry.carrier(),
            )
        self.next_url = f"{ctx.backend_url}{SESSION_HOP}?{urlencode({'ticket': ticket})}"

    @rx.event
    async def logout(self):
        """End the session everywhere, then at the provider."""
        ctx = context()
        session_hash = self._connection_session_hash()
        if not session_hash:
            # Nothing to end here, and nothing to tell the provider (docs/security.md 47).
            self._signed_out()
            yield rx.redirect(HOME)
            return
        self.busy = True
        yield
        ended = await ctx.vault.end(session_hash)
        self._signed_out()
        self.busy = False
        if ended:
            telemetry.session_closed(
                "sign_out",
                user=str(ended.claims.get("sub", "")),
                session=session_hash,
                address=self.router.session.client_ip,
            )
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
        if url and reached:
            self._leaving_until = time.time() + LEAVING_GRACE
            self.next_url = url
        else:
            yield rx.redirect(HOME)

    @rx.event
    def dismiss_error(self):
        self.error_title = self.error_detail = ""
        if self.router.url.path == CALLBACK:
            # Nothing is left to finish there: without the error it would show a
            # "Signing you in" that never ends.
            return rx.redirect(HOME)
        return None

    async def _access_token(self, rejected: str | None = None) -> Credential | None:
        """For PingState (private: never an event): a valid access token (and its DPoP
        key) for this connection's session (`current_token`), or None; the page
        shows what happened (`_render`)."""
        ctx = context()
        session_hash = self._connection_session_hash()
        outcome = await current_token(ctx.vault, ctx.oidc, session_hash, rejected=rejected)
        self._render(outcome)
        if outcome.token:
            # For the sessions list; no write (nor read) within a minute of the last.
            await ctx.vault.touch(session_hash)
        return outcome.credential
