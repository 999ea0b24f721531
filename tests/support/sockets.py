"""Reflex's event websocket spoken by hand, as an attacker would: Engine.IO over a raw
websocket with hand-written handshake headers, frames captured from a real tab."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page
from websockets.sync.client import ClientConnection, connect

from tests.support.app import RunningApp

#: Reflex's Socket.IO namespace (rxconfig.py's backend_path + /_event).
NAMESPACE = "/_reflex/_event"


def event_socket_url(app: RunningApp, token: str) -> str:
    base = app.backend.replace("http://", "ws://")
    return f"{base}{NAMESPACE}/?EIO=4&transport=websocket&token={token}"


def frames_until(ws: ClientConnection, pattern: str, timeout: float = 20) -> str:
    """Every Engine.IO frame received until one matches `pattern` (pings answered)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = str(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        except TimeoutError:
            break
        if frame == "2":  # Engine.IO ping
            ws.send("3")
            continue
        seen.append(frame)
        if re.search(pattern, frame):
            break
    return "\n".join(seen)


@dataclass
class TabCapture:
    """What a real tab sent on its event websocket: its client token and frames."""

    urls: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> TabCapture:
        def on_socket(ws) -> None:
            self.urls.append(ws.url)
            ws.on("framesent", lambda frame: self.sent.append(str(frame)))

        page.on("websocket", on_socket)
        return self

    @property
    def token(self) -> str:
        """The client token of the tab's latest connection."""
        return parse_qs(urlsplit(self.urls[-1]).query)["token"][0]

    def connect_frame(self) -> str:
        """The Socket.IO CONNECT frame, which carries the page's hydrate event."""
        return next(f for f in reversed(self.sent) if f.startswith(f"40{NAMESPACE},"))

    def event_frame(self, handler: str) -> str:
        """The last frame that sent the event `handler` (e.g. `ping_private`)."""
        return next(f for f in reversed(self.sent) if f".{handler}" in f)


@contextmanager
def raw_tab(
    app: RunningApp, token: str, cookies: tuple[str, ...] = (), connect_frame: str | None = None
) -> Iterator[tuple[ClientConnection, str]]:
    """A websocket to the app with the right Origin, `token` and one `Cookie` header
    per item of `cookies`, exactly as written (latin-1, so any bytes can be sent).
    Yields the connection, after Socket.IO's CONNECT, and every frame received
    until then."""
    headers = [("Cookie", cookie) for cookie in cookies]
    with connect(
        event_socket_url(app, token),
        origin=app.url,  # type: ignore[arg-type]
        additional_headers=headers,
        open_timeout=10,
    ) as ws:
        assert str(ws.recv(timeout=10)).startswith("0")  # Engine.IO open
        ws.send(connect_frame or f"40{NAMESPACE},")
        # With the page's hydrate event: until its on_load handlers have run.
        done = r'"is_hydrated_rx_state_":true' if connect_frame else rf"^40{NAMESPACE}"
        yield ws, frames_until(ws, rf"{done}|^44{NAMESPACE}")
