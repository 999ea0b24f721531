"""PingState: the ping buttons' handlers and what the page shows."""

from __future__ import annotations

import reflex as rx

from pingapp.http import shared_client
from pingapp.ping.calls import PingResult, call_api
from pingapp.settings import backend_url, get_settings


class PingState(rx.State):
    """The last ping's answer, and which ping is running."""

    message: str = ""
    ok: bool = True
    status_code: int = 0
    elapsed_ms: float = 0.0
    #: The ping in flight ("public", ...), or "" when none is.
    running: str = ""

    def _start(self, which: str) -> None:
        self.running = which
        self.message = ""
        self.status_code = 0

    def _show(self, result: PingResult) -> None:
        self.running = ""
        self.ok = result.ok
        self.message = result.message
        self.status_code = result.status_code
        self.elapsed_ms = result.elapsed_ms

    @rx.event
    async def ping_public(self):
        """Call `API_URL/public`, which needs no token."""
        if self.running:
            return
        self._start("public")
        yield
        url = get_settings().api_base_url(backend_url()) + "/public"
        self._show(await call_api(shared_client(), url))

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
