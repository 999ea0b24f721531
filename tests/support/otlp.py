"""A real OTLP/HTTP receiver for tests: a small HTTP server on 127.0.0.1 that
accepts `/v1/traces`, `/v1/metrics` and `/v1/logs` protobuf bodies (gzip or not),
decodes them with opentelemetry-proto and keeps what arrived as plain values.

    with OtlpReceiver() as otlp:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url}
        ...
        otlp.wait_for(lambda: otlp.spans_named("pingapp.ping"))
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def value_of(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    links: list[str]  # the linked spans' trace ids
    scope: str
    resource: dict[str, Any]


@dataclass
class Point:
    """One data point of a metric: its attributes and value (a sum's or gauge's
    value, a histogram's count and sum)."""

    metric: str
    unit: str
    attributes: dict[str, Any]
    value: float = 0.0
    count: int = 0
    total: float = 0.0


@dataclass
class LogRecord:
    body: Any
    attributes: dict[str, Any]
    event_name: str
    trace_id: str
    scope: str


@dataclass
class OtlpReceiver:
    """See the module docstring. `bodies` keeps every raw body, for searching."""

    spans: list[Span] = field(default_factory=list)
    #: The points of each metrics export, in order (cumulative: the last one counts).
    exports: list[list[Point]] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    #: False: only count the exports and their bytes (a benchmark's receiver, which
    #: should cost the machine as little as a collector elsewhere would).
    decode: bool = True
    received_bytes: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                del format, args

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    answer = receiver.receive(self.path, body)
                except KeyError:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- decoding --------------------------------------------------------------------

    def receive(self, path: str, body: bytes) -> bytes:
        handlers: dict[str, Callable[[bytes], bytes]] = {
            "/v1/traces": self._traces,
            "/v1/metrics": self._metrics,
            "/v1/logs": self._logs,
        }
        handle = handlers[path]
        with self._lock:
            self.paths.append(path)
            self.received_bytes += len(body)
            if not self.decode:
                return b""  # an empty Export*ServiceResponse: success
            self.bodies.append(body)
            return handle(body)

    def _traces(self, body: bytes) -> bytes:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            resource = attributes_of(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        Span(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes=attributes_of(span.attributes),
                            links=[link.trace_id.hex() for link in span.links],
                            scope=scope_spans.scope.name,
                            resource=resource,
                        )
                    )
        return ExportTraceServiceResponse().SerializeToString()

    def _metrics(self, body: bytes) -> bytes:
        request = ExportMetricsServiceRequest.FromString(body)
        points: list[Point] = []
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data") or ""
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        entry = Point(metric.name, metric.unit, attributes_of(point.attributes))
                        if kind in {"sum", "gauge"}:
                            which = point.WhichOneof("value")
                            entry.value = float(getattr(point, which)) if which else 0.0
                        elif kind == "histogram":
                            entry.count, entry.total = point.count, point.sum
                        points.append(entry)
        self.exports.append(points)
        return ExportMetricsServiceResponse().SerializeToString()

    def _logs(self, body: bytes) -> bytes:
        request = ExportLogsServiceRequest.FromString(body)
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    self.logs.append(
                        LogRecord(
                            body=value_of(record.body),
                            attributes=attributes_of(record.attributes),
                            event_name=record.event_name,
                            trace_id=record.trace_id.hex(),
                            scope=scope_logs.scope.name,
                        )
                    )
        return ExportLogsServiceResponse().SerializeToString()

    # --- reading ---------------------------------------------------------------------

    def spans_named(self, name: str) -> list[Span]:
        with self._lock:
            return [span for span in self.spans if span.name == name]

    def trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [span for span in self.spans if span.trace_id == trace_id]

    def points(self, metric: str) -> list[Point]:
        """The metric's points in the latest export that has it (cumulative sums)."""
        with self._lock:
            for export in reversed(self.exports):
                found = [point for point in export if point.metric == metric]
                if found:
                    return found
        return []

    def audits(self, event: str | None = None) -> list[LogRecord]:
        with self._lock:
            return [
                record
                for record in self.logs
                if "audit.event" in record.attributes
                and (event is None or record.attributes["audit.event"] == event)
            ]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
        """Until `condition()` is truthy (its value), or AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            found = condition()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"telemetry never arrived: {what or condition}")
            time.sleep(0.1)

    def every_value(self) -> list[str]:
        """Every string the exports carried (attribute values, bodies, names), for a
        search for secrets; the raw bodies are searched too (`bodies`)."""
        values: list[str] = []

        def walk(item: Any) -> None:
            if isinstance(item, str):
                values.append(item)
            elif isinstance(item, dict):
                for key, value in item.items():
                    values.append(str(key))
                    walk(value)
            elif isinstance(item, list):
                for value in item:
                    walk(value)

        with self._lock:
            for span in self.spans:
                walk([span.name, span.attributes, span.resource])
            for export in self.exports:
                for point in export:
                    walk([point.metric, point.attributes])
            for record in self.logs:
                walk([record.body, record.attributes, record.event_name])
        return values


__all__ = ["KeyValue", "OtlpReceiver", "Point", "Span"]
