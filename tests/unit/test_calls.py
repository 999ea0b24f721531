"""call_api: every kind of answer becomes words a user can act on."""

from __future__ import annotations

from types import SimpleNamespace

import httpx2
import pytest

from pingapp.ping import calls
from pingapp.ping.calls import call_api
from tests.support.clock import FakeClock
from tests.support.net import free_port

URL = "http://127.0.0.1:9/api/public"


def client_answering(handler) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The clock call_api times its calls with, moved by hand."""
    clock = FakeClock()
    monkeypatch.setattr(calls, "time", SimpleNamespace(perf_counter=clock.monotonic))
    return clock


async def test_message_is_shown_with_status_and_time(clock: FakeClock) -> None:
    def answer_after_a_quarter_second(_: httpx2.Request) -> httpx2.Response:
        clock.advance(0.25)
        return httpx2.Response(200, json={"message": "hi"})

    async with client_answering(answer_after_a_quarter_second) as client:
        result = await call_api(client, URL)
    assert result.ok
    assert result.message == "hi"
    assert result.status_code == 200
    assert result.elapsed_ms == 250.0


async def test_an_answer_without_a_message_is_an_error() -> None:
    async with client_answering(lambda _: httpx2.Response(200, text="<html>")) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert "without a message" in result.message
    assert "API_URL" in result.message


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, {"error": "invalid_token", "error_description": "expired"}, "Sign in again"),
        (403, {"error": "insufficient_scope", "message": "needs read:messages"}, "read:messages"),
        (404, {"detail": "Not Found"}, "Check API_URL"),
        (500, None, "Try again"),
        (418, None, "refused the call (418)"),
    ],
)
async def test_error_statuses_are_explained(status: int, body: dict | None, words: str) -> None:
    async with client_answering(lambda _: httpx2.Response(status, json=body)) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert result.status_code == status
    assert words in result.message


async def test_a_timeout_says_so_and_is_timed_too(clock: FakeClock) -> None:
    def time_out_after_two_seconds(request: httpx2.Request) -> httpx2.Response:
        clock.advance(2.0)
        raise httpx2.ReadTimeout("timed out", request=request)

    async with client_answering(time_out_after_two_seconds) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert result.status_code == 0
    assert "did not answer in time" in result.message
    assert result.elapsed_ms == 2000.0


async def test_an_unreachable_api_names_its_url() -> None:
    # A real connection to a port nobody listens on.
    url = f"http://127.0.0.1:{free_port()}/api/public"
    async with httpx2.AsyncClient(timeout=5) as client:
        result = await call_api(client, url)
    assert not result.ok
    assert result.status_code == 0
    assert f"The API at {url} could not be reached" in result.message


@pytest.mark.parametrize(
    ("challenge", "step_up"),
    [
        ('Bearer error="insufficient_user_authentication", max_age=60', True),
        ("DPoP algs=ES256, error=insufficient_user_authentication", True),
        ('Bearer error="invalid_token"', False),
        # The words inside another parameter's quoted value are not the error.
        ('Bearer error_description="not error=insufficient_user_authentication"', False),
    ],
)
async def test_a_step_up_is_asked_for_by_the_challenges_error(
    challenge: str, step_up: bool
) -> None:
    def refuse(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, headers={"WWW-Authenticate": challenge}, json={})

    async with client_answering(refuse) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert result.step_up is step_up
