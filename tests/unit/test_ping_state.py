"""PingState: the handlers run against the shared client and fill the page's vars."""

from __future__ import annotations

import httpx
import pytest

from pingapp import http
from pingapp.ping.state import PingState
from pingapp.settings import Settings


def new_state() -> PingState:
    return PingState(_reflex_internal_init=True)  # pyright: ignore[reportCallIssue]


async def run(handler, state: PingState) -> list[str]:
    """Run an event handler to its end; return `running` at each yield."""
    return [state.running async for _ in handler.fn(state)]


async def test_public_ping_calls_api_url_public(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(api_url="http://127.0.0.1:9/base")
    monkeypatch.setattr("pingapp.ping.state.get_settings", lambda: settings)
    requests: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"message": "Hello from a public endpoint!"})

    state = new_state()
    async with http.use_client(httpx.AsyncClient(transport=httpx.MockTransport(api))):
        seen = await run(PingState.ping_public, state)

    assert seen == ["public"]  # the spinner showed while the call ran
    assert [str(r.url) for r in requests] == ["http://127.0.0.1:9/base/public"]
    assert "authorization" not in requests[0].headers
    assert state.running == ""
    assert state.ok
    assert state.message == "Hello from a public endpoint!"
    assert state.status_code == 200
    assert state.timing.startswith("HTTP 200 · ")


async def test_a_failed_ping_clears_the_spinner_and_explains() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    state = new_state()
    async with http.use_client(httpx.AsyncClient(transport=httpx.MockTransport(down))):
        await run(PingState.ping_public, state)
    assert state.running == ""
    assert not state.ok
    assert "could not be reached" in state.message
    assert state.timing.startswith("no answer · ")


async def test_a_second_click_while_running_is_ignored() -> None:
    state = new_state()
    state.running = "public"
    calls: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"message": "hi"})

    async with http.use_client(httpx.AsyncClient(transport=httpx.MockTransport(api))):
        assert await run(PingState.ping_public, state) == []
    assert calls == []


def test_shared_client_is_unavailable_outside_the_lifespan() -> None:
    with pytest.raises(RuntimeError, match="lifespan"):
        http.shared_client()


async def test_lifespan_opens_and_closes_one_client() -> None:
    async with http.http_client_lifespan():
        client = http.shared_client()
        assert client is http.shared_client()
        assert client.timeout.read is not None
        assert client.timeout.connect is not None
    assert client.is_closed
    with pytest.raises(RuntimeError):
        http.shared_client()


async def test_this_backends_own_origin_is_answered_in_process() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def public(_) -> JSONResponse:
        return JSONResponse({"message": "in process"})

    own = Starlette(routes=[Route("/api/public", public)])
    async with http.http_client_lifespan(in_process={"http://localhost:8000": own}):
        client = http.shared_client()
        answer = await client.get("http://localhost:8000/api/public")
        assert answer.json() == {"message": "in process"}
        # Any other origin still goes over the network (here: nobody listens).
        with pytest.raises(httpx.ConnectError):
            await client.get("http://127.0.0.1:9/api/public")
