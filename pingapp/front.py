"""What stands in front of Reflex's ASGI app: which requests it never sees, and what
every answer carries.

- `/api`, `/auth`, `/idp` and the API's RFC 9728 metadata (`OWN_PREFIXES`) go to
  pingapp's own backend directly. Reflex wraps whatever it mounts in its credentialed
  CORS layer; these routes need their own policy instead: the API grants CORS_ORIGINS
  without credentials, /auth and /idp grant nobody (docs/security.md 30).
- The event websocket's handshake reaches Reflex rewritten: handlers see only what the
  server computed from our cookies, and a tab's state belongs to the session its
  cookie names (`pingapp.oidc.cookies.handshake_scope`).
- Every HTML answer carries the pages' CSP and headers (`pingapp.web.headers`), unless it
  sends its own (/idp, /api/docs); a page asked for under another loopback name goes
  to the app's origin (`pingapp.web.loopback`); with telemetry on, open websockets are
  counted.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from pingapp import routes, telemetry_instrument
from pingapp.api.metadata import WELL_KNOWN
from pingapp.context import context
from pingapp.oidc.cookies import handshake_scope
from pingapp.reflex_internals import event_path, reflex_paths
from pingapp.web.headers import with_security_headers
from pingapp.web.loopback import loopback_to_origin

#: The prefixes pingapp's own backend serves, in front of Reflex.
OWN_PREFIXES = (routes.API, routes.AUTH, routes.IDP, WELL_KNOWN)


def own_routes_first(reflex_app: ASGIApp, backend: ASGIApp) -> ASGIApp:
    """Requests under `OWN_PREFIXES` go to `backend`, the rest to `reflex_app`, its
    event websocket with the handshake rewritten (see the module docstring)."""
    events = event_path()

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] in {"http", "websocket"} else ""
        if any(path == prefix or path.startswith(prefix + "/") for prefix in OWN_PREFIXES):
            await backend(scope, receive, send)
        elif path.startswith(events):
            ctx = context()
            scope, _ = handshake_scope(scope, secure=ctx.secure, reference=ctx.vault.reference)
            await reflex_app(scope, receive, send)
        else:
            await reflex_app(scope, receive, send)

    return route


def in_front_of(reflex_app: ASGIApp, backend: ASGIApp, origin: str) -> ASGIApp:
    """`reflex_app` behind all of the module docstring's layers; `origin` is where the
    browser loads the app."""
    return loopback_to_origin(
        with_security_headers(
            own_routes_first(telemetry_instrument.count_websockets(reflex_app), backend)
        ),
        origin,
        passthrough=(*OWN_PREFIXES, *reflex_paths()),
    )
