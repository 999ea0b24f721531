"""OpenTelemetry for pingapp: traces, metrics and audit events (docs/telemetry.md).

Off by default: `pingapp.telemetry_setup` builds the SDK's providers once per
process, and only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Without them the
helpers below return at their first line, so the hot path pays one flag check.

This module is the API the rest of the app calls:

- `span(name)`: an internal span (a shared no-op when off); `span(name, root=True)`
  starts a new trace (a ping is one trace, not a child of the tab's websocket);
- `carrier()` / `continued(carrier, name)`: a W3C `traceparent` to keep with a
  pending login, and a span that resumes that trace at a later hop of the sign-in;
- metrics: `sign_in_finished`, `refresh_finished`, `api_denial`, `ping_finished`,
  `session_started` / `session_ended` (websockets: `telemetry_instrument`);
- `audit(event, outcome=..., ...)`: one structured record per security event on
  the `logging` logger `pingapp.audit` (always; visible wherever logging is
  configured at INFO), exported as an OTel log record when telemetry is on;
- the ASGI and httpx instrumentations: `pingapp.telemetry_instrument`.

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
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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

#: Reasons are short lowercase words; anything else (a provider's free text) is "other".
_REASON = re.compile(r"[a-z][a-z0-9_]{0,47}")


class Telemetry:
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


#: This process's telemetry: filled by `telemetry_setup.setup`, replaced by a new
#: one by its `shutdown`. Read it as `telemetry.state` (never import the name).
state = Telemetry()


def enabled() -> bool:
    """Whether this process exports telemetry."""
    return state.enabled


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
    if not state.enabled:
        return _NO_SPAN
    return state.tracer.start_as_current_span(
        name,
        context=Context() if root else None,
        attributes=dict(attributes) if attributes else None,
    )


def carrier() -> str:
    """The current span as a W3C `traceparent`, to keep with a pending login; '' when
    off or outside any span."""
    if not state.enabled:
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
    if not state.enabled:
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
    with state.tracer.start_as_current_span(
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


def add(name: str, value: float, attributes: Mapping[str, Any]) -> None:
    """Add `value` to the counter `name` of `state.instruments` (none while off)."""
    instrument = state.instruments.get(name)
    if instrument is not None:
        instrument.add(value, attributes)


def sign_in_finished(outcome: str, *, reason: str = "", step_up: bool = False) -> None:
    """Count a sign-in: 'success' or 'failure' (with its reason)."""
    if not state.enabled:
        return
    attributes = {"pingapp.outcome": outcome, "pingapp.step_up": step_up}
    if reason:
        attributes["pingapp.reason"] = reason_of(reason)
    add("sign_ins", 1, attributes)


def refresh_finished(outcome: str, *, reason: str = "") -> None:
    """Count a refresh at the provider: 'success' or 'failure' (with its reason)."""
    if not state.enabled:
        return
    attributes = {"pingapp.outcome": outcome}
    if reason:
        attributes["pingapp.reason"] = reason_of(reason)
    add("refreshes", 1, attributes)


def api_denial(reason: str, status: int) -> None:
    """Count a request the API refused (`reason`: its RFC 6750 / 9449 error code)."""
    if not state.enabled:
        return
    add(
        "denials",
        1,
        {"pingapp.reason": reason_of(reason), "http.response.status_code": status},
    )


def ping_finished(which: str, seconds: float, status: int, ok: bool) -> None:
    """Record one ping's duration (`status` 0: no HTTP answer)."""
    if not state.enabled:
        return
    instrument = state.instruments["ping"]
    instrument.record(
        seconds,
        {"pingapp.ping": which, "http.response.status_code": status, "pingapp.ok": ok},
    )


def session_started() -> None:
    if state.enabled:
        add("sessions", 1, {})


def session_ended() -> None:
    if state.enabled:
        add("sessions", -1, {})


# --- audit events ----------------------------------------------------------------------

#: The client address of the event being handled (set by the ping handler for the
#: token lookup it triggers); `audit` uses it when given none.
_address: contextvars.ContextVar[str] = contextvars.ContextVar("pingapp_address", default="")


def set_address(address: str) -> None:
    """The client address `audit` reports in this task (and tasks it starts) when
    given none. Set it at the start of a task of its own: it is never reset."""
    _address.set(address or "")


_fallback_key = secrets.token_bytes(32)


#: What keys session handles: the installed application context's `Vault.reference`
#: (`keyed_by`, from `pingapp.context.use_context`); None: a key of this process.
_session_keyer: Callable[[str], str] | None = None


@contextlib.contextmanager
def keyed_by(reference: Callable[[str], str]) -> Iterator[None]:
    """Key session handles with `reference` for the block (the vault's, so handles are
    stable across restarts and backends)."""
    global _session_keyer  # the one process-wide keyer, by design
    previous, _session_keyer = _session_keyer, reference
    try:
        yield
    finally:
        _session_keyer = previous


def session_handle(session: str) -> str:
    """An opaque, non-secret name for a session in telemetry: 16 hex digits of a keyed
    digest of `session`, its store reference (`Vault.reference` of the cookie). It
    is neither the cookie nor the store key, and cannot be turned into either.
    Keyed with the vault's key (`keyed_by`: stable across restarts and backends), or
    a key of this process when there is no application context."""
    if not session:
        return ""
    message = "pingapp telemetry session " + session
    if _session_keyer is not None:
        return _session_keyer(message)[:16]
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


__all__ = [
    "AUDIT_EVENTS",
    "AUDIT_LOGGER",
    "api_denial",
    "audit",
    "carrier",
    "continued",
    "enabled",
    "ping_finished",
    "refresh_finished",
    "session_closed",
    "session_ended",
    "session_handle",
    "session_started",
    "set_address",
    "sign_in_failed",
    "sign_in_finished",
    "signed_in",
    "span",
]
