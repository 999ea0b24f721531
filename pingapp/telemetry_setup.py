"""The OpenTelemetry SDK's set-up for pingapp, and its lifespan (docs/telemetry.md).

`setup()` builds the SDK's providers once per process from the standard `OTEL_*`
environment variables, and only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
exporters are OTLP over HTTP/protobuf); it fills `pingapp.telemetry.state`, which
the API (`pingapp.telemetry`) and the instrumentations (`pingapp.telemetry_instrument`)
read. `shutdown()` flushes and stops them; `lifespan` does both for the backend.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pingapp import telemetry
from pingapp.telemetry_instrument import SENSITIVE_HEADERS

#: The standard variable that turns telemetry on.
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
#: The service name when OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) gives none.
SERVICE = "pingapp"
#: The instrumentation scope of pingapp's own spans, metrics and audit records.
SCOPE = "pingapp"
#: The instrumentations' sanitize list, which `setup` extends with SENSITIVE_HEADERS.
_SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
#: Ping latency buckets, seconds.
PING_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: pingapp's counters: the key in `state.instruments`, name, unit, description.
_COUNTERS = (
    ("sign_ins", "pingapp.sign_ins", "{sign_in}", "Sign-ins, by outcome and reason."),
    (
        "refreshes",
        "pingapp.token.refreshes",
        "{refresh}",
        "Access-token refreshes at the provider, by outcome and reason.",
    ),
    (
        "denials",
        "pingapp.api.denials",
        "{request}",
        "Requests the protected API refused, by reason.",
    ),
)
#: Its up-down counters, likewise.
_UP_DOWN_COUNTERS = (
    (
        "sessions",
        "pingapp.sessions.active",
        "{session}",
        "Sessions this process started minus those it saw end.",
    ),
    (
        "websockets",
        "pingapp.websockets.active",
        "{websocket}",
        "Open event websockets of this process.",
    ),
)

_lock = threading.Lock()
_configured = False


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
            return telemetry.state.enabled
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
    counters = {
        key: meter.create_counter(name, unit=unit, description=description)
        for key, name, unit, description in _COUNTERS
    }
    up_down = {
        key: meter.create_up_down_counter(name, unit=unit, description=description)
        for key, name, unit, description in _UP_DOWN_COUNTERS
    }
    ping = meter.create_histogram(
        "pingapp.ping.duration",
        unit="s",
        description="A ping event, from the click's event to the answer shown.",
        explicit_bucket_boundaries_advisory=list(PING_BUCKETS),
    )
    telemetry.state.instruments = {**counters, "ping": ping, **up_down}
    handler = _AuditExporter(logger_provider)
    telemetry.audit_log.addHandler(handler)
    telemetry.state.audit_level = telemetry.audit_log.level
    if telemetry.audit_log.getEffectiveLevel() > logging.INFO:
        telemetry.audit_log.setLevel(logging.INFO)
    telemetry.state.tracer_provider = tracer_provider
    telemetry.state.meter_provider = meter_provider
    telemetry.state.logger_provider = logger_provider
    telemetry.state.tracer = tracer_provider.get_tracer(SCOPE)
    telemetry.state.audit_handler = handler
    telemetry.state.enabled = True


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
    state = telemetry.state
    for provider in (state.tracer_provider, state.meter_provider, state.logger_provider):
        if provider is not None:
            provider.force_flush(timeout_ms)


def shutdown() -> None:
    """Flush, then stop the exporters (the backend's stop). Telemetry is off
    afterwards, until the next `setup`."""
    global _configured  # the process's one set-up, by design
    with _lock:
        _configured = False
        stopping, telemetry.state = telemetry.state, telemetry.Telemetry()
    if not stopping.enabled:
        return
    if stopping.audit_handler is not None:
        telemetry.audit_log.removeHandler(stopping.audit_handler)
        telemetry.audit_log.setLevel(stopping.audit_level)
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


class _AuditExporter(logging.Handler):
    """Sends `pingapp.audit` records to the logs pipeline, as OTel log records whose
    attributes are the event's fields (and nothing else of the Python record)."""

    def __init__(self, provider: Any) -> None:
        super().__init__(logging.INFO)
        self._logger = provider.get_logger(telemetry.AUDIT_LOGGER)

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


__all__ = ["ENDPOINT", "flush", "lifespan", "setup", "shutdown", "wanted"]
