"""OpenTelemetry for pingapp: traces, metrics and audit events (docs/telemetry.md).

Off by default. `setup()` builds the SDK's providers once per process from the
standard `OTEL_*` environment variables, and only when `OTEL_EXPORTER_OTLP_ENDPOINT`
is set (the exporters are OTLP over HTTP/protobuf). Without it no SDK provider
exists: the helpers below return at their first line and the ASGI and httpx
wrappers pass straight through, so the hot path pays one flag check.

The rest of the app calls a small API:

- `span(name)`: an internal span (a shared no-op when off); `span(name, root=True)`
  starts a new trace (a ping is one trace, not a child of the tab's websocket);
- `carrier()` / `continued(carrier, name)`: a W3C `traceparent` to keep with a
  pending login, and a span that resumes that trace at a later hop of the sign-in;
- metrics: `sign_in_finished`, `token_outcome`, `api_denied`, `ping_finished`,
  `session_started` / `session_ended`, websockets through `count_websockets`;
- `audit(event, outcome=..., ...)`: one structured record per security event on
  the `logging` logger `pingapp.audit` (always; visible wherever logging is
  configured at INFO), exported as an OTel log record when telemetry is on;
- `instrument_asgi(app)` and `instrument_client(client)`: the official ASGI and
  httpx instrumentations, without query strings and without credential headers.

Never exported: a token, a cookie, an authorization code, a ticket, a secret, a
query string. Users are their `sub`; sessions are an opaque `session_handle`
(a short keyed digest of the store's reference, never the cookie or the store key).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

#: The standard variable that turns telemetry on.
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
#: The service name when OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) gives none.
SERVICE = "pingapp"
#: The instrumentation scope of pingapp's own spans, metrics and audit records.
SCOPE = "pingapp"

#: The logger audit events are written to (docs/telemetry.md).
AUDIT_LOGGER = "pingapp.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)

#: The audit events (docs/telemetry.md lists their fields).
AUDIT_EVENTS = frozenset(
    {
        "sign_in",
        "sign_out",
        "session_ended_elsewhere",
        "backchannel_logout",
        "refresh_failed",
        "step_up",
        "api_denied",
    }
)
OUTCOMES = frozenset({"success", "failure", "denied"})

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
_SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"

#: Reasons are short lowercase words; anything else (a provider's free text) is "other".
_REASON = re.compile(r"[a-z][a-z0-9_]{0,47}")
#: Ping latency buckets, seconds.
PING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Telemetry:
    """The process's providers and instruments; `None` everywhere while off."""

    def __init__(self) -> None:
        self.enabled = False
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.logger_provider: Any = None
        self.tracer: trace.Tracer = trace.NoOpTracer()
        self.instruments: dict[str, Any] = {}
        self.audit_handler: logging.Handler | None = None
        #: The audit logger's own level before `setup` lowered it to INFO.
        self.audit_level = logging.NOTSET


_state = _Telemetry()
_lock = threading.Lock()
_configured = False


def enabled() -> bool:
    """Whether this process exports telemetry."""
    return _state.enabled


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for export (OTEL_EXPORTER_OTLP_ENDPOINT set, and
    the SDK not disabled with OTEL_SDK_DISABLED=true)."""
    environ = os.environ if environ is None else environ
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return bool(environ.get(ENDPOINT, "").strip()) and not disabled


def setup(
    environ: Mapping[str, str] | None = None,
    *,
    span_exporter: Any = None,
    metric_reader: Any = None,
    log_exporter: Any = None,
) -> bool:
    """Build the providers once per process when `wanted`; True when on.

    The exporters are OTLP over HTTP; tests may pass their own (`span_exporter`,
    `metric_reader`, `log_exporter`, exported at once rather than in batches).

    Everything else comes from the standard variables, read by the SDK itself:
    OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_*_ENDPOINT, OTEL_BSP_*, OTEL_BLRP_*, OTEL_METRIC_EXPORT_INTERVAL,
    OTEL_TRACES_SAMPLER...
    """
    global _configured  # the process's one set-up, by design
    with _lock:
        if _configured:
            return _state.enabled
        _configured = True
        if not wanted(environ):
            return False
        _build(span_exporter, metric_reader, log_exporter)
        return True


def _build(span_exporter: Any, metric_reader: Any, log_exporter: Any) -> None:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME itself.
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = Resource.create({SERVICE_NAME: SERVICE})
    # OTEL_{TRACES,METRICS,LOGS}_EXPORTER=none leaves a signal out (a Jaeger takes
    # traces only); any other value means OTLP.
    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif _exports("TRACES"):
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if metric_reader is None and _exports("METRICS"):
        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    readers = [metric_reader] if metric_reader is not None else []
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    logger_provider = LoggerProvider(resource=resource)
    if log_exporter is not None:
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    elif _exports("LOGS"):
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    # Not installed as the API's global providers: only what pingapp hands them to
    # (its own spans, the ASGI and httpx instrumentations, both without query
    # strings) exports anything. A library with telemetry of its own (FastAPI's
    # native tracing records the query string) stays off.
    _protect_headers()

    meter = meter_provider.get_meter(SCOPE)
    _state.instruments = {
        "sign_ins": meter.create_counter(
            "pingapp.sign_ins", unit="{sign_in}", description="Sign-ins, by outcome and reason."
        ),
        "refreshes": meter.create_counter(
            "pingapp.token.refreshes",
            unit="{refresh}",
            description="Access-token refreshes at the provider, by outcome and reason.",
        ),
        "denials": meter.create_counter(
            "pingapp.api.denials",
            unit="{request}",
            description="Requests the protected API refused, by reason.",
        ),
        "ping": meter.create_histogram(
            "pingapp.ping.duration",
            unit="s",
            description="A ping event, from the click's event to the answer shown.",
            explicit_bucket_boundaries_advisory=list(PING_BUCKETS),
        ),
        "sessions": meter.create_up_down_counter(
            "pingapp.sessions.active",
            unit="{session}",
            description="Sessions this process started minus those it saw end.",
        ),
        "websockets": meter.create_up_down_counter(
            "pingapp.websockets.active",
            unit="{websocket}",
            description="Open event websockets of this process.",
        ),
    }
    handler = _AuditExporter(logger_provider)
    audit_log.addHandler(handler)
    _state.audit_level = audit_log.level
    if audit_log.getEffectiveLevel() > logging.INFO:
        audit_log.setLevel(logging.INFO)
    _state.tracer_provider = tracer_provider
    _state.meter_provider = meter_provider
    _state.logger_provider = logger_provider
    _state.tracer = tracer_provider.get_tracer(SCOPE)
    _state.audit_handler = handler
    _state.enabled = True


def _exports(signal: str) -> bool:
    return os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").strip().lower() != "none"


def _protect_headers() -> None:
    """Add the credential headers to the instrumentations' sanitize list, so that no
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* setting exports their values."""
    given = [name.strip() for name in os.environ.get(_SANITIZE, "").split(",") if name.strip()]
    missing = [name for name in SENSITIVE_HEADERS if name not in {g.lower() for g in given}]
    os.environ[_SANITIZE] = ",".join([*given, *missing])


def flush(timeout_ms: int = 5000) -> None:
    """Export what is pending now (spans, metrics, audit records)."""
    for provider in (_state.tracer_provider, _state.meter_provider, _state.logger_provider):
        if provider is not None:
            provider.force_flush(timeout_ms)


def shutdown() -> None:
    """Flush, then stop the exporters (the backend's stop). Telemetry is off
    afterwards, until the next `setup`."""
    global _configured, _state
    with _lock:
        _configured = False
        stopping, _state = _state, _Telemetry()
    if not stopping.enabled:
        return
    if stopping.audit_handler is not None:
        audit_log.removeHandler(stopping.audit_handler)
        audit_log.setLevel(stopping.audit_level)
    for provider in (stopping.tracer_provider, stopping.meter_provider, stopping.logger_provider):
        provider.force_flush(5000)
        provider.shutdown()


@contextlib.asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    """A lifespan task: `setup` at start, `shutdown` (with a final flush) at stop.
    Register it before the tasks that open the shared HTTP client."""
    setup()
    try:
        yield
    finally:
        shutdown()


# --- spans -----------------------------------------------------------------------------


class _NoSpan(contextlib.AbstractContextManager):
    """The span of telemetry off: one shared object, entered for free."""

    def __enter__(self) -> Span:
        return trace.INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


def span(
    name: str, *, attributes: Mapping[str, Any] | None = None, root: bool = False
) -> contextlib.AbstractContextManager[Span]:
    """An internal span around the block, current inside it; `root`: a new trace.
    Off: a no-op that yields `trace.INVALID_SPAN` (setting attributes on it is free)."""
    if not _state.enabled:
        return _NO_SPAN
    return _state.tracer.start_as_current_span(
        name,
        context=Context() if root else None,
        attributes=dict(attributes) if attributes else None,
    )


def carrier() -> str:
    """The current span as a W3C `traceparent`, to keep with a pending login; '' when
    off or outside any span."""
    if not _state.enabled:
        return ""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    carried: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carried)
    return carried.get("traceparent", "")


@contextlib.contextmanager
def continued(
    traceparent: str, name: str, *, attributes: Mapping[str, Any] | None = None
) -> Iterator[Span]:
    """A span that continues the trace `traceparent` names (from `carrier`), linked to
    the span current here (the request that brought it back); a new trace when the
    carrier is empty or not a valid `traceparent`."""
    if not _state.enabled:
        yield trace.INVALID_SPAN
        return
    here = trace.get_current_span().get_span_context()
    links = [Link(here)] if here.is_valid else None
    parent = (
        TraceContextTextMapPropagator().extract({"traceparent": traceparent})
        if traceparent
        else Context()
    )
    if not trace.get_current_span(parent).get_span_context().is_valid:
        parent = Context()
    with _state.tracer.start_as_current_span(
        name,
        context=parent,
        links=links,
        attributes=dict(attributes) if attributes else None,
    ) as current:
        yield current


def current_trace_id() -> str:
    """The current trace's id in hex ('' when off or outside a span): for tests and logs."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else ""


# --- metrics ---------------------------------------------------------------------------


def reason_of(text: str | None) -> str:
    """A bounded, non-secret reason: a short lowercase word as given, else 'other'."""
    if not text:
        return ""
    text = text.strip().lower()
    return text if _REASON.fullmatch(text) else "other"


def _add(name: str, value: float, attributes: Mapping[str, Any]) -> None:
    instrument = _state.instruments.get(name)
    if instrument is not None:
        instrument.add(value, attributes)


def sign_in_finished(outcome: str, *, reason: str = "", step_up: bool = False) -> None:
    """Count a sign-in: 'success' or 'failure' (with its reason)."""
    if not _state.enabled:
        return
    attributes = {"pingapp.outcome": outcome, "pingapp.step_up": step_up}
    if reason:
        attributes["pingapp.reason"] = reason_of(reason)
    _add("sign_ins", 1, attributes)


def refresh_finished(outcome: str, *, reason: str = "") -> None:
    """Count a refresh at the provider: 'success' or 'failure' (with its reason)."""
    if not _state.enabled:
        return
    attributes = {"pingapp.outcome": outcome}
    if reason:
        attributes["pingapp.reason"] = reason_of(reason)
    _add("refreshes", 1, attributes)


def api_denial(reason: str, status: int) -> None:
    """Count a request the API refused (`reason`: its RFC 6750 / 9449 error code)."""
    if not _state.enabled:
        return
    _add(
        "denials",
        1,
        {"pingapp.reason": reason_of(reason), "http.response.status_code": status},
    )


def ping_finished(which: str, seconds: float, status: int, ok: bool) -> None:
    """Record one ping's duration (`status` 0: no HTTP answer)."""
    if not _state.enabled:
        return
    instrument = _state.instruments["ping"]
    instrument.record(
        seconds,
        {"pingapp.ping": which, "http.response.status_code": status, "pingapp.ok": ok},
    )


def session_started() -> None:
    if _state.enabled:
        _add("sessions", 1, {})


def session_ended() -> None:
    if _state.enabled:
        _add("sessions", -1, {})


# --- audit events ----------------------------------------------------------------------

#: The client address of the event being handled (set by the ping handler for the
#: token lookup it triggers); `audit` uses it when given none.
_address: contextvars.ContextVar[str] = contextvars.ContextVar("pingapp_address", default="")


def set_address(address: str) -> None:
    """The client address `audit` reports in this task (and tasks it starts) when
    given none. Set it at the start of a task of its own: it is never reset."""
    _address.set(address or "")


_fallback_key = secrets.token_bytes(32)


def session_handle(session: str) -> str:
    """An opaque, non-secret name for a session in telemetry: 16 hex digits of a keyed
    digest of `session`, its store reference (`Vault.reference` of the cookie). It
    is neither the cookie nor the store key, and cannot be turned into either.
    Keyed with the vault's key (stable across restarts and backends), or a key of
    this process when there is no application context."""
    if not session:
        return ""
    message = "pingapp telemetry session " + session
    try:
        from pingapp.context import context

        return context().vault.reference(message)[:16]
    except RuntimeError:
        return hmac.new(_fallback_key, message.encode(), hashlib.sha256).hexdigest()[:16]


def audit(
    event: str,
    *,
    outcome: str,
    user: str = "",
    session: str = "",
    address: str = "",
    reason: str = "",
) -> None:
    """One audit event, a structured record on the `pingapp.audit` logger.

    `event` is one of AUDIT_EVENTS and `outcome` one of OUTCOMES; `user` the
    user's id (`sub`); `session` the session's store reference (exported only as
    its `session_handle`); `address` the client's address (default: the one set
    with `set_address`); `reason` a short word ('other' when it is not one).
    Nothing is built when neither logging nor telemetry wants the record.
    """
    if not audit_log.isEnabledFor(logging.INFO):
        return  # neither telemetry nor the logging configuration wants it
    fields = {
        "audit.event": event,
        "audit.outcome": outcome,
        "enduser.id": str(user or ""),
        "session.handle": session_handle(session),
        "client.address": address or _address.get(),
        "audit.reason": reason_of(reason),
    }
    words = " ".join(f"{key.split('.')[-1]}={value}" for key, value in fields.items() if value)
    audit_log.info("audit %s", words, extra={"audit": fields})


# --- the sign-in's and sign-out's events, in one call each (the hooks' API) -------------


def signed_in(*, user: str, session: str, address: str = "", step_up: bool = False) -> None:
    """A sign-in finished: counted, one more active session, and its audit event
    (`step_up` for a step-up sign-in, else `sign_in`). `session` is the new
    session's store reference (`Vault.reference` of its id), never the id."""
    sign_in_finished("success", step_up=step_up)
    session_started()
    audit(
        "step_up" if step_up else "sign_in",
        outcome="success",
        user=user,
        session=session,
        address=address,
    )


def sign_in_failed(reason: str, *, address: str = "", step_up: bool = False) -> None:
    """A sign-in failed (`reason`: the LoginError's code, or a word of the caller's)."""
    sign_in_finished("failure", reason=reason or "other", step_up=step_up)
    audit(
        "step_up" if step_up else "sign_in",
        outcome="failure",
        address=address,
        reason=reason or "other",
    )


def session_closed(
    event: str, *, user: str, session: str, address: str = "", reason: str = ""
) -> None:
    """A session ended (`event`: 'sign_out', 'session_ended_elsewhere' or
    'backchannel_logout'): one active session fewer, and its audit event."""
    session_ended()
    audit(event, outcome="success", user=user, session=session, address=address, reason=reason)


class _AuditExporter(logging.Handler):
    """Sends `pingapp.audit` records to the logs pipeline, as OTel log records whose
    attributes are the event's fields (and nothing else of the Python record)."""

    def __init__(self, provider: Any) -> None:
        super().__init__(logging.INFO)
        self._logger = provider.get_logger(AUDIT_LOGGER)

    def emit(self, record: logging.LogRecord) -> None:
        from opentelemetry._logs import SeverityNumber

        fields = getattr(record, "audit", None)
        if not isinstance(fields, dict):
            return
        try:
            self._logger.emit(
                timestamp=int(record.created * 1e9),
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=record.getMessage(),
                attributes={key: value for key, value in fields.items() if value != ""},
                event_name=f"pingapp.audit.{fields.get('audit.event', '')}",
            )
        except Exception:  # never let telemetry break the request
            self.handleError(record)


# --- instrumentation -------------------------------------------------------------------

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
        if not _state.enabled or scope["type"] != "http":
            await app(scope, receive, send)
            return
        if traced is None:
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

            traced = OpenTelemetryMiddleware(
                restore,
                tracer_provider=_state.tracer_provider,
                meter_provider=_state.meter_provider,
                http_capture_headers_sanitize_fields=list(SENSITIVE_HEADERS),
                exclude_spans=["receive", "send"],
            )
        hidden = {**scope, "query_string": b"", query_key: scope.get("query_string", b"")}
        await traced(hidden, receive, send)

    return asgi


def instrument_client(client: Any) -> None:
    """Trace `client`'s requests (and every mounted transport's: the in-process API)
    with the official httpx instrumentation, which also sends the trace context
    (`traceparent`) with each request. URLs are exported without their query string.
    Nothing when telemetry is off."""
    if not _state.enabled:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    async def scrub(span: Span, request: Any) -> None:
        if not span.is_recording():
            return
        url = _without_query(str(request.url if hasattr(request, "url") else request[1]))
        attributes = getattr(span, "attributes", None) or {}
        for key in ("http.url", "url.full"):
            if key in attributes:
                span.set_attribute(key, url)

    HTTPXClientInstrumentor.instrument_client(
        client,
        tracer_provider=_state.tracer_provider,
        meter_provider=_state.meter_provider,
        request_hook=scrub,
    )


def count_websockets(app: ASGIApp) -> ASGIApp:
    """`app`, counting its open websockets in `pingapp.websockets.active` when on."""

    async def asgi(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if not _state.enabled or scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        _add("websockets", 1, {})
        try:
            await app(scope, receive, send)
        finally:
            _add("websockets", -1, {})

    return asgi


__all__ = [
    "AUDIT_EVENTS",
    "AUDIT_LOGGER",
    "ENDPOINT",
    "SpanKind",
    "api_denial",
    "audit",
    "carrier",
    "continued",
    "count_websockets",
    "enabled",
    "flush",
    "instrument_asgi",
    "instrument_client",
    "lifespan",
    "ping_finished",
    "refresh_finished",
    "session_closed",
    "session_ended",
    "session_handle",
    "session_started",
    "set_address",
    "setup",
    "shutdown",
    "sign_in_failed",
    "sign_in_finished",
    "signed_in",
    "span",
]
