"""PingState: the ping buttons' handlers and what the page shows."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import reflex as rx

from pingapp import telemetry
from pingapp.auth.state import AuthState
from pingapp.context import context
from pingapp.outbound.http import Credential, TokenAuth, TokenProvider
from pingapp.ping.calls import PingResult, call_api
from pingapp.urls import origin_of

SIGN_IN_FIRST = PingResult(False, "Sign in first: the private endpoints need your access token.")
CANNOT_RENEW = PingResult(
    False,
    "Your session could not be renewed: the sign-in provider cannot be reached. "
    "Try again in a moment.",
)


class NoToken(Exception):
    """The session gave no token for the call: nothing is sent."""


def session_tokens(auth: AuthState) -> TokenProvider:
    """`TokenAuth`'s token provider for this tab's session (the token, and its DPoP key
    when bound): asked only when a request goes to an allowed origin; no first token
    ends the call before anything is sent."""

    async def provide(rejected: str | None) -> Credential | None:
        token = await auth._access_token(rejected)
        if token is None and rejected is None:
            raise NoToken
        return token

    return provide


async def page_updates(
    request: Awaitable[PingResult], spinner_delay: float
) -> AsyncIterator[PingResult | None]:
    """What the page shows of one API call: None ("Calling the API…") only if no
    answer came within `spinner_delay` seconds (at once for 0), then the answer. A
    fast answer is thus one update instead of two."""
    call = asyncio.ensure_future(request)
    try:
        if spinner_delay > 0:
            await asyncio.wait({call}, timeout=spinner_delay)
        if not call.done():
            yield None
        yield await call
    finally:
        call.cancel()  # only if the handler itself was cancelled


class PingState(rx.State):
    """The last ping's answer, and which ping is running."""

    message: str = ""
    ok: bool = True
    status_code: int = 0
    elapsed_ms: float = 0.0
    #: The ping in flight ("public", ...), or "" when none is.
    running: str = ""
    #: The API asked for a more recent sign-in (RFC 9470 step-up).
    step_up: bool = False
    #: How many answers this tab has shown: each one changes the page, even when its
    #: message is the same as the last one's.
    answers: int = 0

    def _start(self, which: str) -> None:
        self.running = which
        self.message = ""
        self.status_code = 0

    def _show(self, result: PingResult) -> None:
        self.running = ""
        self.step_up = result.step_up
        self.ok = result.ok
        self.message = result.message
        self.status_code = result.status_code
        self.elapsed_ms = result.elapsed_ms
        self.answers += 1

    def _traced(self, which: str, request: Callable[[], Awaitable[PingResult]]) -> asyncio.Future:
        """`request()` started as a task: with telemetry on, under a new trace's root
        span `pingapp.ping` (the token lookup, the API call and the API's token check
        are its children), and its duration recorded. Off: only the task."""
        if not telemetry.enabled():
            return asyncio.ensure_future(request())
        address = self.router.session.client_ip

        async def traced() -> PingResult:
            telemetry.set_address(address)  # this task's own context: the audit's address
            started = time.perf_counter()
            with telemetry.span(
                "pingapp.ping", root=True, attributes={"pingapp.ping": which}
            ) as span:
                result = await request()
                span.set_attribute("http.response.status_code", result.status_code)
                span.set_attribute("pingapp.ok", result.ok)
            telemetry.ping_finished(
                which, time.perf_counter() - started, result.status_code, result.ok
            )
            return result

        return asyncio.ensure_future(traced())

    @rx.event
    async def ping_public(self):
        """Call `API_URL/public`, which needs no token."""
        if self.running:
            return
        self._start("public")
        ctx = context()
        url = ctx.api_url("/public")
        request = self._traced("public", lambda: call_api(ctx.client, url))
        async for result in page_updates(request, ctx.settings.ping_spinner_delay):
            if result is None:
                yield  # "Calling the API…"
            else:
                self._show(result)

    @rx.event
    async def ping_private(self):
        """Call `API_URL/private` with the user's access token."""
        async for update in self._secured_ping("private", "/private"):
            yield update

    @rx.event
    async def ping_recent(self):
        """Call `API_URL/private-recent`, which needs a recent sign-in (RFC 9470)."""
        async for update in self._secured_ping("recent", "/private-recent"):
            yield update

    @rx.event
    async def ping_scoped(self):
        """Call `API_URL/private-scoped`, which also needs `read:messages`."""
        async for update in self._secured_ping("scoped", "/private-scoped"):
            yield update

    async def _secured_ping(self, which: str, path: str):
        # Hiding the buttons is not protection: the session is checked here.
        if self.running:
            return
        auth = await self.get_state(AuthState)
        if not auth.signed_in:
            self._show(SIGN_IN_FIRST)
            return
        self._start(which)
        # The session comes from this connection's cookie, checked on every ping.
        ctx = context()
        url = ctx.api_url(path)
        auth_flow = TokenAuth(session_tokens(auth), ctx.allowlist, nonces=ctx.dpop_nonces)

        async def request() -> PingResult:
            try:
                return await call_api(ctx.client, url, auth_flow)
            except NoToken:
                # Still signed in but no token: the provider could not renew it.
                return CANNOT_RENEW

        call = self._traced(which, request)
        async for answer in page_updates(call, ctx.settings.ping_spinner_delay):
            if answer is None:
                yield  # "Calling the API…"
            else:
                self._finish(auth, url, answer)

    def _finish(self, auth: AuthState, url: str, result: PingResult) -> None:
        """Show a secured ping's `result`, explained in the page's terms."""
        ctx = context()
        if not auth.signed_in:  # the session ended (expired, revoked) meanwhile
            result = SIGN_IN_FIRST
        elif result.status_code == 401 and not ctx.allowlist.allows(url):
            result = dataclasses.replace(
                result,
                message=(
                    f"Not authorized (401): no token was sent, because {origin_of(url)} is "
                    "not in API_ALLOWED_ORIGINS. Add it there if this API should get your "
                    "access token."
                ),
            )
        elif result.status_code == 401 and ctx.settings.auth_audience is None:
            # No audience was asked for, so no token can pass: signing in again won't help.
            result = dataclasses.replace(
                result,
                message=(
                    "Not authorized (401): the access token names no API, because "
                    "AUTH_AUDIENCE is empty. Set AUTH_AUDIENCE to your API's identifier, "
                    "restart the app, then log in again."
                ),
            )
        self._show(result)

    @rx.var
    def has_answer(self) -> bool:
        return bool(self.message) and not self.running

    @rx.var
    def timing(self) -> str:
        """'HTTP 200 · 4.2 ms', or the time alone when no HTTP answer came."""
        if not self.message:
            return ""
        status = f"HTTP {self.status_code} · " if self.status_code else "no answer · "
        return f"{status}{self.elapsed_ms:g} ms"
