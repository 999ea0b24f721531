"""Telemetry against the running app (`make run`, as a user starts it) exporting over
OTLP/HTTP to a real receiver started here (`tests/support/otlp.py`): a ping is one
trace from the event to the API's token check, the metrics and audit events arrive
with the right values, and nothing exported holds a token, a cookie, a code or a
ticket the test can read (the stored sessions, the browser's cookies and URLs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.app import RunningApp, start_app, stored_sessions, wait_for_sessions
from tests.support.browser import sign_in, sign_in_at_provider
from tests.support.otlp import OtlpReceiver, Span

PRIVATE = "Hello from a private endpoint! You need to be authenticated to see this."


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("telemetry") / "states"


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, otlp: OtlpReceiver, states_dir: Path
) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("telemetry-app"),
        env={
            "IDP_USERS": "alice:alice,dave:dave",
            "REFLEX_STATES_WORKDIR": str(states_dir),
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            "OTEL_SERVICE_NAME": "pingapp-e2e",
            # Export within a second rather than the defaults' 5 s (spans) and 60 s (metrics).
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        },
    )
    yield running
    running.stop()


class Seen:
    """What the browser sent and held: every URL it asked for, and its cookies."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.urls: list[str] = []
        context.on("request", lambda request: self.urls.append(request.url))

    def query_values(self, name: str) -> list[str]:
        return [
            match
            for url in self.urls
            for match in re.findall(rf"[?&]{name}=([^&#]+)", url)
            if len(match) >= 8
        ]

    def cookie_values(self) -> list[str]:
        values = [cookie.get("value", "") for cookie in self.context.cookies()]
        return [value for value in values if len(value) >= 8]


def signed_in(browser: Browser, app: RunningApp, user: str, **consent) -> tuple[Page, Seen]:
    context = browser.new_context()
    seen = Seen(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user, **consent)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    return page, seen


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [span for span in spans if span.parent_id == parent.span_id]


def descends(spans: list[Span], span: Span, ancestor: Span) -> bool:
    by_id = {s.span_id: s for s in spans}
    while span.parent_id:
        if span.parent_id == ancestor.span_id:
            return True
        parent = by_id.get(span.parent_id)
        if parent is None:
            return False
        span = parent
    return False


def secrets_of(states_dir: Path, seen: Seen) -> set[str]:
    """Every token and key the server stores, every cookie the browser holds, and
    every code, state and ticket its URLs carried."""
    found: set[str] = set()
    for session in stored_sessions(states_dir):
        found |= {session.access_token, session.refresh_token, session.id_token}
        found |= {session.dpop_key} if session.dpop_key else set()
    found |= set(seen.cookie_values())
    for name in ("code", "state", "ticket", "request_uri"):
        found |= set(seen.query_values(name))
    return {value for value in found if value}


def assert_nothing_secret(otlp: OtlpReceiver, secrets: set[str]) -> None:
    values = otlp.every_value()
    for secret in secrets:
        assert not [value for value in values if secret in value], "a secret was exported"
        assert not [body for body in otlp.bodies if secret.encode() in body]
    # No JWT of any kind, whatever the test could not read.
    assert not [value for value in values if re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.", value)]


def test_a_ping_is_one_trace_from_the_event_to_the_token_check(
    app: RunningApp, browser: Browser, otlp: OtlpReceiver, states_dir: Path
) -> None:
    page, seen = signed_in(browser, app, "alice")
    page.click("#ping-private")
    expect(page.locator("#ping-message")).to_have_text(PRIVATE)

    def private_ping() -> list[Span]:
        return [
            s for s in otlp.spans_named("pingapp.ping") if s.attributes["pingapp.ping"] == "private"
        ]

    [ping] = otlp.wait_for(private_ping, what="the private ping's span")
    assert ping.parent_id == ""  # a trace of its own, not the websocket's
    assert ping.attributes["http.response.status_code"] == 200
    assert ping.resource["service.name"] == "pingapp-e2e"

    def whole_trace() -> list[Span] | None:
        spans = otlp.trace(ping.trace_id)
        names = {span.name for span in spans}
        wanted = {"pingapp.token", "GET", "GET /api/private", "pingapp.api.check_token"}
        return spans if wanted <= names else None

    spans = otlp.wait_for(whole_trace, what="the ping's trace")
    by_name = {span.name: span for span in spans}
    token, client = by_name["pingapp.token"], by_name["GET"]
    server, check = by_name["GET /api/private"], by_name["pingapp.api.check_token"]
    assert token.parent_id == ping.span_id
    assert token.attributes["pingapp.token.outcome"] == "fresh"
    assert client.parent_id == ping.span_id
    assert server.parent_id == client.span_id  # traceparent crossed the in-process call
    assert descends(spans, check, server)
    assert client.attributes.get("http.url", "").endswith("/api/private")

    # Its duration arrives as a histogram point.
    def ping_duration() -> list:
        return [
            p
            for p in otlp.points("pingapp.ping.duration")
            if p.attributes["pingapp.ping"] == "private"
            and p.attributes["http.response.status_code"] == 200
        ]

    [duration] = otlp.wait_for(ping_duration, what="pingapp.ping.duration")
    assert duration.count >= 1
    assert duration.unit == "s"
    assert 0 < duration.total < 10
    # This tab's websocket is open.
    otlp.wait_for(
        lambda: [p for p in otlp.points("pingapp.websockets.active") if p.value >= 1],
        what="pingapp.websockets.active",
    )
    wait_for_sessions(states_dir, 1)
    assert_nothing_secret(otlp, secrets_of(states_dir, seen))
    page.context.close()


def test_a_denied_call_is_counted_and_audited(
    app: RunningApp, browser: Browser, otlp: OtlpReceiver, states_dir: Path
) -> None:
    page, seen = signed_in(browser, app, "dave", untick=("read:messages",))
    page.click("#ping-scoped")
    expect(page.locator("#ping-message")).to_contain_text("Forbidden (403)")
    [dave] = [s for s in stored_sessions(states_dir) if "dave" in json.dumps(s.claims)]
    subject = dave.claims["sub"]

    def denial() -> list:
        return [
            p
            for p in otlp.points("pingapp.api.denials")
            if p.attributes["pingapp.reason"] == "insufficient_scope"
        ]

    [count] = otlp.wait_for(denial, what="pingapp.api.denials")
    assert count.value >= 1
    assert count.attributes["http.response.status_code"] == 403
    records = otlp.wait_for(
        lambda: [
            r
            for r in otlp.audits("api_denied")
            if r.attributes.get("audit.reason") == "insufficient_scope"
        ],
        what="the api_denied audit event",
    )
    fields = records[-1].attributes
    assert fields["enduser.id"] == subject
    assert fields["audit.outcome"] == "denied"
    assert fields["client.address"]
    [scoped] = [
        s
        for s in otlp.wait_for(lambda: otlp.spans_named("pingapp.ping"))
        if s.attributes["pingapp.ping"] == "scoped"
    ]
    assert scoped.attributes["http.response.status_code"] == 403
    assert_nothing_secret(otlp, secrets_of(states_dir, seen))
    page.context.close()


def test_a_sign_in_is_one_trace_and_an_audit_event(
    app: RunningApp, browser: Browser, otlp: OtlpReceiver, states_dir: Path
) -> None:
    hops: list[str] = []
    context = browser.new_context()
    context.on(
        "request",
        lambda request: hops.append(request.url) if "/auth/login" in request.url else None,
    )
    seen = Seen(context)
    page = context.new_page()
    page.set_default_timeout(20_000)
    # The receiver lives as long as the app: count only what this test's sign-in sends
    # (a rerun after a hung browser sees the first attempt's records too).
    earlier = len(otlp.audits("sign_in"))
    sign_in(page, app.url, "alice")
    assert hops

    def login_trace() -> list[Span] | None:
        for login in otlp.spans_named("GET /auth/login"):
            spans = otlp.trace(login.trace_id)
            names = {span.name for span in spans}
            if {"pingapp.sign_in.callback", "pingapp.sign_in.session"} <= names:
                return spans
        return None

    spans = otlp.wait_for(login_trace, what="the sign-in's trace")
    by_name = {span.name: span for span in spans}
    login = by_name["GET /auth/login"]
    assert login.parent_id == ""
    assert descends(spans, by_name["pingapp.sign_in.callback"], login)
    assert descends(spans, by_name["pingapp.sign_in.session"], login)
    # The token request to the provider is part of it (the callback's client span).
    assert any(span.name == "POST" for span in spans)

    records = otlp.wait_for(
        lambda: [
            r
            for r in otlp.audits("sign_in")[earlier:]
            if r.attributes["audit.outcome"] == "success"
        ],
        what="the sign_in audit event",
    )
    fields = records[-1].attributes
    assert fields["enduser.id"]
    assert len(fields["session.handle"]) == 16
    otlp.wait_for(
        lambda: [
            p
            for p in otlp.points("pingapp.sign_ins")
            if p.attributes["pingapp.outcome"] == "success" and p.value >= 1
        ],
        what="pingapp.sign_ins",
    )
    assert_nothing_secret(otlp, secrets_of(states_dir, seen))

    page.click("#qsLogoutBtn")
    otlp.wait_for(
        lambda: [
            r
            for r in otlp.audits("sign_out")
            if r.attributes["session.handle"] == fields["session.handle"]
        ],
        what="the sign_out audit event of this session",
    )
    context.close()
