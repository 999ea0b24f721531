"""call_api: every kind of answer becomes words a user can act on."""

from __future__ import annotations

import socket

import httpx
import pytest

from pingapp.ping.calls import call_api

URL = "http://127.0.0.1:9/api/public"


def client_answering(handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_message_is_shown_with_status_and_time() -> None:
    async with client_answering(lambda _: httpx.Response(200, json={"message": "hi"})) as client:
        result = await call_api(client, URL)
    assert result.ok
    assert result.message == "hi"
    assert result.status_code == 200
    assert result.elapsed_ms >= 0


async def test_an_answer_without_a_message_is_an_error() -> None:
    async with client_answering(lambda _: httpx.Response(200, text="<html>")) as client:
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
    async with client_answering(lambda _: httpx.Response(status, json=body)) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert result.status_code == status
    assert words in result.message


async def test_a_timeout_says_so() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with client_answering(slow) as client:
        result = await call_api(client, URL)
    assert not result.ok
    assert result.status_code == 0
    assert "did not answer in time" in result.message


async def test_an_unreachable_api_names_its_url() -> None:
    # A real connection to a port nobody listens on.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/public"
    async with httpx.AsyncClient(timeout=5) as client:
        result = await call_api(client, url)
    assert not result.ok
    assert result.status_code == 0
    assert f"The API at {url} could not be reached" in result.message
