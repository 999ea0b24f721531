"""Both spellings of this machine lead to the app.

The app's origin is one URL (`frontend_url()`, e.g. `http://localhost:3000`): the
event websocket accepts that Origin only, the provider sends the browser back
there, and the cookies belong to that host. A browser that opens the same port
under another loopback name (`127.0.0.1`, `[::1]`, or `localhost` when the origin
is `127.0.0.1`) would load pages whose websocket is refused and whose buttons are
dead. So page requests under another loopback name are redirected to the origin
(308, same path and query). Nothing else is: the API, the sign-in hops, the
provider and Reflex's own routes answer at any name, as they did.

`make run` serves pages from Vite's dev server, which does the same with the
plugin in `pingapp.web.headers` (`pingappLoopbackRedirect`).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from pingapp.urls import is_loopback_host


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return "", None
    return (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def redirect_target(host_header: str, target: str, origin: str) -> str | None:
    """Where a page request for `target` (path and query) sent with `host_header`
    goes instead: `origin` + `target` when the header names this loopback port under
    another loopback name and `origin` is loopback; else None (serve it)."""
    scheme = urlsplit(origin).scheme or "http"
    want_host, want_port = _host_and_port(urlsplit(origin).netloc, scheme)
    host, port = _host_and_port(host_header, scheme)
    if not (is_loopback_host(want_host) and is_loopback_host(host)):
        return None
    if port != want_port or host.strip("[]") == want_host.strip("[]"):
        return None
    return origin.rstrip("/") + (target if target.startswith("/") else "/" + target)


def loopback_to_origin(app: ASGIApp, origin: str, passthrough: Iterable[str]) -> ASGIApp:
    """`app`, with GET and HEAD page requests under another loopback name sent to
    `origin`; paths under `passthrough` prefixes are never redirected. An origin
    that is not loopback has no other names to redirect from: `app` as it is."""
    if not is_loopback_host(urlsplit(origin).hostname):
        return app
    prefixes = tuple(passthrough)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in {"GET", "HEAD"}:
            path: str = scope.get("path", "")
            if not any(path == p or path.startswith(p + "/") for p in prefixes):
                # The path as the browser sent it (still percent-encoded).
                raw = scope.get("raw_path") or path.encode()
                query = scope.get("query_string", b"")
                target = (raw + (b"?" + query if query else b"")).decode("latin-1")
                location = redirect_target(Headers(scope=scope).get("host", ""), target, origin)
                if location:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 308,
                            "headers": [
                                (b"location", location.encode("latin-1")),
                                (b"content-length", b"0"),
                                (b"cache-control", b"no-store"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await app(scope, receive, send)

    return route
