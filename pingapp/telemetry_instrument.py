"""The official ASGI and httpx2 OpenTelemetry instrumentations, as pingapp uses them
(docs/telemetry.md): without query strings and without credential headers.

Each wrapper checks `pingapp.telemetry.state` at every request or call: while
telemetry is off (no `telemetry_setup.setup`), it passes straight through.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from opentelemetry.trace import Span

from pingapp import telemetry

#: Headers never captured as attributes, whatever OTEL_INSTRUMENTATION_HTTP_CAPTURE_*
#: asks for (their values are replaced by "[REDACTED]").
SENSITIVE_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "dpop",
    "dpop-nonce",
    "x-api-key",
)

ASGIApp = Callable[..., Any]


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]


def instrument_asgi(app: ASGIApp) -> ASGIApp:
    """`app` under the official ASGI instrumentation once telemetry is on (checked at
    each request; the middleware is built at the first request after `setup`).

    HTTP requests only: a websocket lives as long as its tab, so a span for it
    would hold every event. The instrumentation sees the request without its query
    string (which may hold a code, a state or a ticket); the app gets it intact.
    No request or response header is captured.
    """
    traced: ASGIApp | None = None
    query_key = "pingapp.query_string"

    async def restore(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if query_key in scope:
            scope = {**scope, "query_string": scope[query_key]}
            del scope[query_key]
        await app(scope, receive, send)

    async def asgi(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        nonlocal traced
        if not telemetry.state.enabled or scope["type"] != "http":
            await app(scope, receive, send)
            return
        if traced is None:
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            traced = OpenTelemetryMiddleware(
                restore,
                tracer_provider=telemetry.state.tracer_provider,
                meter_provider=telemetry.state.meter_provider,
                http_capture_headers_sanitize_fields=list(SENSITIVE_HEADERS),
                exclude_spans=["receive", "send"],
            )
        hidden = {**scope, "query_string": b"", query_key: scope.get("query_string", b"")}
        await traced(hidden, receive, send)

    return asgi


def instrument_client(client: Any) -> None:
    """Trace `client`'s requests (and every mounted transport's: the in-process API)
    with the official httpx2 instrumentation, which also sends the trace context
    (`traceparent`) with each request. URLs are exported without their query string.
    Nothing when telemetry is off."""
    if not telemetry.state.enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor

    async def scrub(span: Span, request: Any) -> None:
        if not span.is_recording():
            return
        url = _without_query(str(request.url if hasattr(request, "url") else request[1]))
        attributes = getattr(span, "attributes", None) or {}
        for key in ("http.url", "url.full"):
            if key in attributes:
                span.set_attribute(key, url)

    HTTPX2ClientInstrumentor.instrument_client(
        client,
        tracer_provider=telemetry.state.tracer_provider,
        meter_provider=telemetry.state.meter_provider,
        request_hook=scrub,
    )


def count_websockets(app: ASGIApp) -> ASGIApp:
    """`app`, counting its open websockets in `pingapp.websockets.active` when on."""

    async def asgi(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if not telemetry.state.enabled or scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        telemetry.add("websockets", 1, {})
        try:
            await app(scope, receive, send)
        finally:
            telemetry.add("websockets", -1, {})

    return asgi


__all__ = ["SENSITIVE_HEADERS", "count_websockets", "instrument_asgi", "instrument_client"]
