"""PingState: the handlers run against the context's client and fill the page's vars."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path

import httpx2
import pytest
from cryptography.fernet import Fernet

from pingapp.context import build_context, use_context
from pingapp.oidc.session import Vault
from pingapp.oidc.store import DiskStore
from pingapp.ping.state import PingState
from pingapp.settings import Settings

BACKEND = "http://localhost:8000"


def new_state() -> PingState:
    return PingState(_reflex_internal_init=True)  # pyright: ignore[reportCallIssue]


async def run(handler, state: PingState) -> list[str]:
    """Run an event handler to its end; return `running` at each yield."""
    return [state.running async for _ in handler.fn(state)]


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)


@contextlib.asynccontextmanager
async def serving(
    vault: Vault,
    api: Callable[[httpx2.Request], httpx2.Response]
    | Callable[[httpx2.Request], Coroutine[None, None, httpx2.Response]],
    *,
    spinner_delay: float = 5.0,
) -> AsyncIterator[None]:
    """The application context, with API_URL answered by `api` (its answers come at
    once, so a spinner delay of seconds shows no spinner however slow the machine)."""
    settings = Settings(api_url="http://127.0.0.1:9/base", ping_spinner_delay=spinner_delay)
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as client:
        built = build_context(
            client, settings=settings, vault=vault, backend=BACKEND, frontend=BACKEND
        )
        with use_context(built):
            yield


async def test_public_ping_calls_api_url_public(vault: Vault) -> None:
    requests: list[httpx2.Request] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(200, json={"message": "Hello from a public endpoint!"})

    state = new_state()
    async with serving(vault, api):
        seen = await run(PingState.ping_public, state)

    assert seen == []  # a fast answer: one update, no spinner before it
    assert [str(r.url) for r in requests] == ["http://127.0.0.1:9/base/public"]
    assert "authorization" not in requests[0].headers
    assert state.running == ""
    assert state.ok
    assert state.message == "Hello from a public endpoint!"
    assert state.status_code == 200
    assert state.timing.startswith("HTTP 200 · ")
    assert state.answers == 1


async def test_a_slow_answer_shows_the_spinner_first(vault: Vault) -> None:
    release = asyncio.Event()

    async def api(request: httpx2.Request) -> httpx2.Response:
        await release.wait()  # answers only once the spinner is on the page
        return httpx2.Response(200, json={"message": "Late, but here"})

    state = new_state()
    state.message = "the last answer"
    seen = []
    async with serving(vault, api, spinner_delay=0.01):
        async for _ in PingState.ping_public.fn(state):
            seen.append((state.running, state.message))
            release.set()
    assert seen == [("public", "")]  # "Calling the API…", the last answer gone
    assert (state.running, state.message, state.answers) == ("", "Late, but here", 1)


async def test_no_spinner_delay_shows_the_spinner_at_once(vault: Vault) -> None:
    def api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"message": "hi"})

    state = new_state()
    async with serving(vault, api, spinner_delay=0):
        assert await run(PingState.ping_public, state) == ["public"]
    assert state.message == "hi"


async def test_each_answer_counts_even_when_the_message_repeats(vault: Vault) -> None:
    def api(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"message": "same"})

    state = new_state()
    async with serving(vault, api):
        await run(PingState.ping_public, state)
        await run(PingState.ping_public, state)
    assert (state.message, state.answers) == ("same", 2)


async def test_a_failed_ping_clears_the_spinner_and_explains(vault: Vault) -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    state = new_state()
    async with serving(vault, down):
        await run(PingState.ping_public, state)
    assert state.running == ""
    assert not state.ok
    assert "could not be reached" in state.message
    assert state.timing.startswith("no answer · ")


async def test_a_second_click_while_running_is_ignored(vault: Vault) -> None:
    state = new_state()
    state.running = "public"
    calls: list[httpx2.Request] = []

    def api(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return httpx2.Response(200, json={"message": "hi"})

    async with serving(vault, api):
        assert await run(PingState.ping_public, state) == []
    assert calls == []
