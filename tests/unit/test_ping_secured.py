"""The secured pings: the session is checked in the handler, the token goes only to
allow-listed origins, and an `invalid_token` answer is refreshed once and retried.

The API is an `httpx2.MockTransport`; sessions live in a real `Vault` on a temporary
`DiskStore`, and the tab's connection carries what the app's handshake
(`handshake_scope`) makes of the browser's cookies: references only. The browser
tests run the same handlers against the real API.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest
import reflex as rx
from cryptography.fernet import Fernet
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData

from pingapp.auth.state import AuthState
from pingapp.context import AppContext, build_context, context, use_context
from pingapp.oidc.cookies import SESSION_COOKIE, handshake_scope
from pingapp.oidc.errors import ProviderUnavailable
from pingapp.oidc.session import ServerSession, Vault
from pingapp.oidc.store import DiskStore
from pingapp.ping.state import PingState
from pingapp.settings import Settings

API = "http://127.0.0.1:9/api"
FRONTEND = "http://localhost:3000"


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)


def fake_context(client: httpx2.AsyncClient, vault: Vault, **values: str) -> AppContext:
    """The application context of a backend on localhost whose API is at API."""
    settings = Settings(api_url=API, **values)  # pyright: ignore[reportArgumentType]
    return build_context(
        client, settings=settings, vault=vault, backend="http://localhost:8000", frontend=FRONTEND
    )


@contextlib.contextmanager
def use_settings(**values: str) -> Iterator[AppContext]:
    """The current context, with other settings."""
    with use_context(fake_context(context().client, context().vault, **values)) as changed:
        yield changed


async def tree(signed_in: bool, expires_in: float = 300) -> tuple[PingState, AuthState]:
    root = rx.State(_reflex_internal_init=True)  # pyright: ignore[reportCallIssue]
    ping = root.substates[PingState.get_name()]
    auth = root.substates[AuthState.get_name()]
    assert isinstance(ping, PingState)
    assert isinstance(auth, AuthState)
    connect(auth, "")
    if signed_in:
        session_id = await context().vault.create(
            ServerSession(access_token="token-1", expires_at=time.time() + expires_in)
        )
        auth._session_hash = context().vault.reference(session_id)
        connect(auth, f"{SESSION_COOKIE}={session_id}")
        auth.signed_in = True
    return ping, auth


def connect(auth: AuthState, cookie: str) -> None:
    """The tab's connection from a browser sending `cookie` (raw values): its
    handlers see the one Cookie header the handshake makes of it."""
    ctx = context()
    scope = {"type": "websocket", "headers": [(b"cookie", cookie.encode())], "query_string": b""}
    rewritten, _ = handshake_scope(scope, secure=ctx.secure, reference=ctx.vault.reference)
    [header] = [value for name, value in rewritten["headers"] if name == b"cookie"]
    auth.router = RouterData(
        session=SessionData(client_token="tab-1"),
        headers=HeaderData(cookie=header.decode()),
        url=ReflexURL(FRONTEND + "/ping"),
    )


async def run(handler, state: PingState) -> None:
    async for _ in handler.fn(state):
        pass


Seen = list[tuple[str, str | None]]


@pytest.fixture
async def api(vault: Vault) -> AsyncIterator[Seen]:
    """The shared client, answering like the API; yields (url, Authorization) of
    each request as it was sent (a retry reuses the request object)."""
    seen: Seen = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.headers.get("authorization") != "Bearer token-1":
            return httpx2.Response(
                401,
                json={"error": "invalid_token", "error_description": "no good"},
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return httpx2.Response(200, json={"message": "Hello from a private endpoint!"})

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client:
        with use_context(fake_context(client, vault)):
            yield seen


async def test_signed_out_gets_nothing_and_calls_nothing(vault: Vault, api: Seen) -> None:
    ping, _ = await tree(signed_in=False)
    await run(PingState.ping_private, ping)
    await run(PingState.ping_scoped, ping)
    assert api == []
    assert not ping.ok
    assert ping.message.startswith("Sign in first")


async def test_a_signed_in_ping_carries_the_session_token(vault: Vault, api: Seen) -> None:
    ping, _ = await tree(signed_in=True)
    await run(PingState.ping_scoped, ping)
    assert api == [(API + "/private-scoped", "Bearer token-1")]
    assert ping.ok
    assert ping.message == "Hello from a private endpoint!"


async def test_a_revoked_session_is_refused_on_the_server(vault: Vault, api: Seen) -> None:
    ping, auth = await tree(signed_in=True)
    await vault.end(auth._session_hash)  # logged out in another tab
    await run(PingState.ping_private, ping)
    assert all(authorization is None for _, authorization in api)
    assert not auth.signed_in
    assert ping.message.startswith("Sign in first")


async def test_the_token_stays_home_when_api_url_is_not_allowed(vault: Vault, api: Seen) -> None:
    ping, _ = await tree(signed_in=True)
    with use_settings(api_allowed_origins="https://elsewhere.example.test"):
        await run(PingState.ping_private, ping)
    assert api == [(API + "/private", None)]
    assert "not in API_ALLOWED_ORIGINS" in ping.message


async def test_invalid_token_is_refreshed_once_and_retried(
    vault: Vault, api: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    ping, auth = await tree(signed_in=True)
    async with vault.modify(auth._session_hash) as stored:
        assert stored is not None
        stored.access_token = "revoked-at-the-api"
        stored.refresh_token = "refresh-1"
    refreshes: list[str] = []

    async def refresh(refresh_token: str, *, dpop_key: str = "") -> dict:
        refreshes.append(refresh_token)
        return {"access_token": "token-1", "refresh_token": "refresh-2", "expires_in": 300}

    monkeypatch.setattr(context().oidc, "refresh", refresh)
    await run(PingState.ping_private, ping)
    assert [authorization for _, authorization in api] == [
        "Bearer revoked-at-the-api",
        "Bearer token-1",
    ]
    assert refreshes == ["refresh-1"]
    assert ping.ok
    stored = await vault.load(auth._session_hash)
    assert stored is not None
    assert stored.refresh_token == "refresh-2"


async def test_a_rejected_token_without_refresh_is_explained(vault: Vault, api: Seen) -> None:
    ping, auth = await tree(signed_in=True)
    async with vault.modify(auth._session_hash) as stored:
        assert stored is not None
        stored.access_token = "revoked-at-the-api"
    await run(PingState.ping_private, ping)
    assert len(api) == 1  # no refresh token: no retry
    assert ping.status_code == 401
    assert "Sign in again" in ping.message


@pytest.mark.parametrize(
    "connection", ["no cookie", "another session's cookie", "the session's store key as cookie"]
)
async def test_a_stolen_client_token_sends_no_token(
    vault: Vault, api: Seen, connection: str
) -> None:
    """SECURITY 25: the tab state says signed in and names the session, but the
    connection driving it (a stolen Reflex client token) lacks the cookie."""
    ping, auth = await tree(signed_in=True)
    victim = auth._session_hash
    if connection == "no cookie":
        connect(auth, "other=1")
    elif connection == "another session's cookie":
        theirs = await vault.create(
            ServerSession(access_token="their-token", expires_at=time.time() + 300)
        )
        connect(auth, f"{SESSION_COOKIE}={theirs}")
    else:
        # SECURITY 45: a store key read from Redis or a file is no cookie.
        connect(auth, f"{SESSION_COOKIE}={victim}")
    await run(PingState.ping_private, ping)
    await run(PingState.ping_scoped, ping)
    assert all(authorization is None for _, authorization in api)
    assert api == []
    assert not ping.ok
    assert ping.message.startswith("Sign in first")
    assert await vault.load(victim) is not None  # the victim's session is untouched


async def test_a_token_that_cannot_be_renewed_is_not_sent_and_is_explained(
    vault: Vault, api: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    ping, auth = await tree(signed_in=True, expires_in=-1)  # expired
    async with vault.modify(auth._session_hash) as stored:
        assert stored is not None
        stored.refresh_token = "refresh-1"

    async def provider_down(refresh_token: str, *, dpop_key: str = "") -> dict:
        raise ProviderUnavailable("The sign-in provider cannot be reached", "down")

    monkeypatch.setattr(context().oidc, "refresh", provider_down)
    await run(PingState.ping_private, ping)
    assert api == []  # nothing was sent
    assert auth.signed_in  # the session stays for when the provider is back
    assert ping.message.startswith("Your session could not be renewed")


async def test_a_401_without_an_audience_says_to_set_it(vault: Vault, api: Seen) -> None:
    """Signing in again cannot help when no audience is asked for: the message says
    which setting to change."""
    ping, auth = await tree(signed_in=True)
    async with vault.modify(auth._session_hash) as stored:
        assert stored is not None
        stored.access_token = "opaque-token-for-no-api"
    with use_settings(auth_audience=""):
        await run(PingState.ping_private, ping)
    assert ping.status_code == 401
    assert "AUTH_AUDIENCE is empty" in ping.message
    assert "Sign in again" not in ping.message
