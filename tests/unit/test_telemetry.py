"""`pingapp.telemetry`: off by default at no cost, and when OTEL_EXPORTER_OTLP_ENDPOINT
is set, spans, metrics and audit records that reach a real OTLP/HTTP receiver
(`tests/support/otlp.py`) without a query string, a token or a session id."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pingapp import telemetry, telemetry_instrument, telemetry_setup
from pingapp.api import create_api
from pingapp.oidc.errors import GrantRejected
from pingapp.oidc.refresh import Outcome, current_token
from pingapp.oidc.session import ServerSession, Vault
from pingapp.oidc.store import DiskStore
from tests.support.otlp import OtlpReceiver

SECRET = "s3cr3t-code-value"


@pytest.fixture
def off() -> Iterator[None]:
    telemetry_setup.shutdown()
    assert not telemetry_setup.setup({})
    yield
    telemetry_setup.shutdown()


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """Telemetry on, exporting over OTLP/HTTP to a receiver of the test's own."""
    telemetry_setup.shutdown()
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "pingapp-unit")
        monkeypatch.delenv(telemetry_setup._SANITIZE, raising=False)
        assert telemetry_setup.setup()
        try:
            yield receiver
        finally:
            telemetry_setup.shutdown()


def app_echoing_its_query() -> Starlette:
    async def echo(request: Request) -> PlainTextResponse:
        with telemetry.span("inner"):
            return PlainTextResponse(request.url.query)

    return Starlette(routes=[Route("/callback", echo)])


# --- off ------------------------------------------------------------------------------


def test_off_by_default_nothing_is_built(off: None) -> None:
    assert not telemetry.enabled()
    assert not telemetry_setup.wanted({})
    assert not telemetry_setup.wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}
    )
    assert telemetry_setup.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    # One shared no-op: no span object, no context change.
    assert telemetry.span("a") is telemetry.span("b")
    with telemetry.span("a") as span:
        span.set_attribute("anything", 1)
        assert not span.is_recording()
        assert telemetry.carrier() == ""
    with telemetry.continued("00-" + "1" * 32 + "-" + "2" * 16 + "-01", "x") as span:
        assert not span.is_recording()
    # Metrics helpers return at once.
    telemetry.sign_in_finished("success")
    telemetry.ping_finished("private", 0.01, 200, True)


async def test_off_the_wrappers_pass_the_request_through_untouched(off: None) -> None:
    seen: list[dict] = []

    async def app(scope, receive, send):
        seen.append(scope)
        await PlainTextResponse("ok")(scope, receive, send)

    wrapped = telemetry_instrument.count_websockets(telemetry_instrument.instrument_asgi(app))
    client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=wrapped))
    transport = client._transport
    telemetry_instrument.instrument_client(client)
    assert client._transport is transport
    assert not getattr(client, "_is_instrumented_by_opentelemetry", False)
    async with client:
        answer = await client.get("http://app/callback?code=x")
    assert answer.text == "ok"
    assert seen[0]["query_string"] == b"code=x"
    assert "traceparent" not in dict(seen[0]["headers"])


def test_off_audit_records_go_to_logging_only_when_it_wants_them(
    off: None, caplog: pytest.LogCaptureFixture
) -> None:
    telemetry.audit("sign_out", outcome="success", user="alice", session="ref")
    assert not caplog.records  # INFO is not enabled by default
    with caplog.at_level(logging.INFO, logger=telemetry.AUDIT_LOGGER):
        telemetry.audit("sign_out", outcome="success", user="alice", session="ref")
    [record] = caplog.records
    fields = record.audit  # pyright: ignore[reportAttributeAccessIssue]
    assert fields["audit.event"] == "sign_out"
    assert fields["enduser.id"] == "alice"
    assert fields["session.handle"] not in {"", "ref"}
    assert "ref" not in record.getMessage().split()


# --- on -------------------------------------------------------------------------------


def test_a_carried_trace_continues_at_a_later_hop(otlp: OtlpReceiver) -> None:
    with telemetry.span("login", root=True) as login:
        carried = telemetry.carrier()
    assert carried.startswith("00-")
    with (
        telemetry.span("another request", root=True) as other,
        telemetry.continued(carried, "callback") as callback,
    ):
        assert callback.get_span_context().trace_id == login.get_span_context().trace_id
    # A bad or empty carrier starts a trace of its own.
    with telemetry.continued("garbage", "lost") as lost:
        assert lost.get_span_context().trace_id != login.get_span_context().trace_id
    telemetry_setup.flush()
    [span] = otlp.spans_named("callback")
    assert span.parent_id == format(login.get_span_context().span_id, "016x")
    assert span.links == [format(other.get_span_context().trace_id, "032x")]
    assert span.resource["service.name"] == "pingapp-unit"


async def test_a_call_through_the_shared_client_is_one_trace_without_the_query(
    otlp: OtlpReceiver,
) -> None:
    app = telemetry_instrument.instrument_asgi(app_echoing_its_query())
    client = httpx2.AsyncClient(mounts={"http://app": httpx2.ASGITransport(app=app)})
    telemetry_instrument.instrument_client(client)
    async with client:
        with telemetry.span("pingapp.ping", root=True) as root:
            answer = await client.get(f"http://app/callback?code={SECRET}&state=abc")
    assert answer.text == f"code={SECRET}&state=abc"  # the app got its query
    telemetry_setup.flush()
    trace_id = format(root.get_span_context().trace_id, "032x")
    spans = {span.name: span for span in otlp.trace(trace_id)}
    assert {"pingapp.ping", "GET", "GET /callback", "inner"} <= set(spans)
    assert spans["GET"].parent_id == spans["pingapp.ping"].span_id
    assert spans["GET /callback"].parent_id == spans["GET"].span_id
    assert spans["inner"].parent_id == spans["GET /callback"].span_id
    assert spans["GET"].attributes.get("http.url") == "http://app/callback"
    assert spans["GET /callback"].attributes.get("http.url") == "http://app/callback"
    assert not [value for value in otlp.every_value() if SECRET in value]
    assert not [body for body in otlp.bodies if SECRET.encode() in body]


async def test_a_signal_can_be_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    telemetry_setup.shutdown()
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
        assert telemetry_setup.setup()
        try:
            with telemetry.span("kept", root=True):
                telemetry.ping_finished("public", 0.001, 200, True)
                telemetry.audit("sign_out", outcome="success")
            telemetry_setup.flush()
        finally:
            telemetry_setup.shutdown()
        assert receiver.spans_named("kept")
        assert set(receiver.paths) == {"/v1/traces"}


def test_credential_headers_are_always_sanitized(otlp: OtlpReceiver) -> None:
    import os

    sanitized = os.environ[telemetry_setup._SANITIZE].split(",")
    assert {"authorization", "cookie", "set-cookie", "dpop"} <= set(sanitized)


def test_audit_records_are_exported_with_their_fields_only(otlp: OtlpReceiver) -> None:
    telemetry.audit(
        "sign_in",
        outcome="failure",
        user="alice",
        session="0123456789abcdef" * 4,
        address="127.0.0.1",
        reason="The provider said: <script>",
    )
    telemetry_setup.flush()
    [record] = otlp.audits("sign_in")
    fields = record.attributes
    assert fields["audit.outcome"] == "failure"
    assert fields["enduser.id"] == "alice"
    assert fields["client.address"] == "127.0.0.1"
    assert fields["audit.reason"] == "other"
    handle = fields["session.handle"]
    assert len(handle) == 16
    assert handle not in "0123456789abcdef" * 4
    assert record.event_name == "pingapp.audit.sign_in"
    assert set(fields) == {
        "audit.event",
        "audit.outcome",
        "enduser.id",
        "session.handle",
        "client.address",
        "audit.reason",
    }


async def test_the_metrics_arrive_with_their_attributes(otlp: OtlpReceiver) -> None:
    telemetry.sign_in_finished("success")
    telemetry.sign_in_finished("failure", reason="bad_state")
    telemetry.sign_in_finished("failure", reason="The provider said no")
    telemetry.refresh_finished("failure", reason="revoked")
    telemetry.api_denial("invalid_token", 401)
    telemetry.ping_finished("private", 0.004, 200, True)
    telemetry.session_started()

    async def socket(scope, receive, send):
        del scope, receive, send
        counted = {p.value for p in otlp_points(otlp, "pingapp.websockets.active")}
        assert counted in (set(), {1.0})

    await telemetry_instrument.count_websockets(socket)({"type": "websocket"}, None, None)
    telemetry_setup.flush()
    sign_ins = {
        (p.attributes["pingapp.outcome"], p.attributes.get("pingapp.reason", "")): p.value
        for p in otlp.points("pingapp.sign_ins")
    }
    assert sign_ins == {("success", ""): 1, ("failure", "bad_state"): 1, ("failure", "other"): 1}
    [refresh] = otlp.points("pingapp.token.refreshes")
    assert refresh.attributes["pingapp.reason"] == "revoked"
    [denial] = otlp.points("pingapp.api.denials")
    assert denial.attributes == {
        "pingapp.reason": "invalid_token",
        "http.response.status_code": 401,
    }
    [ping] = otlp.points("pingapp.ping.duration")
    assert (ping.count, ping.unit, ping.attributes["pingapp.ping"]) == (1, "s", "private")
    assert [p.value for p in otlp.points("pingapp.sessions.active")] == [1]
    assert [p.value for p in otlp.points("pingapp.websockets.active")] == [0]


def otlp_points(otlp: OtlpReceiver, name: str) -> list:
    return otlp.points(name)


async def test_an_api_refusal_is_counted_and_audited(otlp: OtlpReceiver) -> None:
    api = create_api(cors_origins=[])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api)) as client:
        answer = await client.get("http://api/private")
    assert answer.status_code == 401
    telemetry_setup.flush()
    [denial] = otlp.points("pingapp.api.denials")
    assert denial.attributes["pingapp.reason"] == "missing_token"
    [record] = otlp.audits("api_denied")
    assert record.attributes["audit.outcome"] == "denied"
    assert record.attributes["client.address"] == "127.0.0.1"
    [check] = otlp.spans_named("pingapp.api.check_token")
    assert check.attributes["pingapp.reason"] == "missing_token"


class RefusingProvider:
    async def refresh(self, refresh_token: str, *, dpop_key: str = "") -> dict:
        raise GrantRejected("Your session has ended", "The provider refused it.")


async def test_a_refused_refresh_is_a_span_a_count_and_an_audit_event(
    otlp: OtlpReceiver, tmp_path: Path
) -> None:
    vault = Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)
    session_id = await vault.create(
        ServerSession(
            access_token="access-secret",
            refresh_token="refresh-secret",
            expires_at=1.0,
            claims={"sub": "alice"},
        )
    )
    reference = vault.reference(session_id)
    telemetry.set_address("192.0.2.7")
    outcome = await current_token(vault, RefusingProvider(), reference)
    assert outcome.kind is Outcome.REVOKED
    telemetry_setup.flush()
    [token_span] = otlp.spans_named("pingapp.token")
    assert token_span.attributes["pingapp.token.outcome"] == "revoked"
    [refresh_span] = otlp.spans_named("pingapp.token.refresh")
    assert refresh_span.parent_id == token_span.span_id
    [record] = otlp.audits("refresh_failed")
    assert record.attributes["enduser.id"] == "alice"
    assert record.attributes["audit.reason"] == "revoked"
    assert record.attributes["client.address"] == "192.0.2.7"
    assert record.attributes["session.handle"] not in {session_id, reference}
    assert [p.value for p in otlp.points("pingapp.sessions.active")] == [-1]
    for secret in (session_id, reference, "access-secret", "refresh-secret"):
        assert not [value for value in otlp.every_value() if secret in value]
