"""AuthState: every path of the login callback, refresh and logout.

The provider here is an `httpx.MockTransport` answering discovery, JWKS, token,
userinfo and revocation with tokens this test signs; the sessions live in a real
Reflex state manager (in memory). Browser tests cover the same flow against the
embedded provider.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData
from reflex.istate.manager.memory import StateManagerMemory

from pingapp import http
from pingapp.auth import oidc, session
from pingapp.auth.state import AuthState
from pingapp.settings import Settings

ISSUER = "https://idp.example.test/"
FRONTEND = "http://localhost:3000"
BACKEND = "http://localhost:8000"
CLIENT_ID = "pingapp"


class FakeProvider:
    """Just enough of an OpenID Provider, with knobs to misbehave."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.id_claims: dict[str, Any] = {}
        self.sign_with = self.key
        self.token_requests: list[dict[str, list[str]]] = []
        self.revoked: list[str] = []
        self.token_error: str | None = None
        self.refresh_delay = 0.0
        self.nonce = ""
        self.counter = 0
        self.down = False

    def id_token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce,
            "name": "Alice",
            "email": "alice@example.test",
            **self.id_claims,
            **overrides,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.sign_with, algorithm="RS256", headers={"kid": "k1"})

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("down", request=request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": ISSUER + "authorize",
                    "token_endpoint": ISSUER + "oauth/token",
                    "jwks_uri": ISSUER + "jwks",
                    "userinfo_endpoint": ISSUER + "userinfo",
                    "revocation_endpoint": ISSUER + "revoke",
                    "end_session_endpoint": ISSUER + "logout",
                },
            )
        if path == "/jwks":
            jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
            return httpx.Response(200, json={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
        if path == "/oauth/token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            if self.token_error:
                return httpx.Response(400, json={"error": self.token_error})
            self.counter += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"access-{self.counter}",
                    "refresh_token": f"refresh-{self.counter}",
                    "id_token": self.id_token(),
                    "expires_in": 300,
                    "scope": "openid profile read:messages",
                    "token_type": "Bearer",
                },
            )
        if path == "/userinfo":
            return httpx.Response(200, json={"sub": "user-1", "picture": "https://p.test/a.png"})
        if path == "/revoke":
            self.revoked.append(parse_qs(request.content.decode())["token"][0])
            return httpx.Response(200)
        return httpx.Response(404)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def env(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StateManagerMemory]:
    """Settings, the shared client (to the fake provider) and a state manager."""
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID)
    manager = StateManagerMemory()
    monkeypatch.setattr("pingapp.auth.state.get_settings", lambda: settings)
    monkeypatch.setattr("pingapp.auth.state.backend_url", lambda: BACKEND)
    monkeypatch.setattr("pingapp.auth.state.frontend_url", lambda: FRONTEND)
    monkeypatch.setattr("pingapp.auth.session.get_state_manager", lambda: manager)

    async def no_other_tabs(tabs: list[str], except_token: str) -> None:
        del tabs, except_token

    monkeypatch.setattr("pingapp.auth.state._sign_out_tabs", no_other_tabs)
    oidc.clear_caches()
    transport = httpx.MockTransport(provider.handler)
    async with http.use_client(httpx.AsyncClient(transport=transport)):
        yield manager
    oidc.clear_caches()


def new_tab(path: str = "/", cookie: str = "", token: str = "tab-1") -> AuthState:
    state = AuthState(_reflex_internal_init=True)  # pyright: ignore[reportCallIssue]
    at(state, path, cookie=cookie, token=token)
    return state


def at(state: AuthState, path: str, cookie: str = "", token: str = "tab-1") -> None:
    state.router = RouterData(
        session=SessionData(client_token=token),
        headers=HeaderData(cookie=cookie),
        url=ReflexURL(FRONTEND + path),
    )


async def run(handler, state: AuthState, *args: Any) -> list[Any]:
    """Run an event handler to its end; return what it yielded or returned."""
    result = handler.fn(state, *args)
    if inspect.isasyncgen(result):
        return [item async for item in result]
    return [await result]


def navigations(events: list[Any]) -> list[str]:
    """The URLs that `navigate(...)` events in `events` send the browser to."""
    found = []
    for event in events:
        for _, value in getattr(event, "args", ()):
            code = getattr(value, "_var_value", None)
            if isinstance(code, str) and code.startswith("window.location.replace("):
                found.append(json.loads(code.removeprefix("window.location.replace(")[:-1]))
    return found


async def login(state: AuthState, provider: FakeProvider, return_to: str = "") -> str:
    """Start a login; return the authorization URL and arm the provider's nonce."""
    [url] = navigations(await run(AuthState.login, state, return_to))
    provider.nonce = parse_qs(urlsplit(url).query)["nonce"][0]
    return url


async def callback(state: AuthState, query: str) -> list[Any]:
    at(state, "/callback?" + query)
    return await run(AuthState.handle_callback, state)


def state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


# --- the authorization request ---------------------------------------------------------


async def test_login_sends_pkce_state_nonce_audience_and_scope(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab("/ping")
    url = await login(state, provider)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(ISSUER + "authorize?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [FRONTEND + "/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["audience"] == ["urn:pingapp:api"]
    assert "read:messages" in query["scope"][0].split()
    pending = state._pending
    assert pending is not None
    # SECURITY 13: the verifier is long, random, and only its hash leaves the server.
    assert len(pending.code_verifier) >= 43
    assert pending.code_verifier not in url
    assert query["code_challenge"][0] != pending.code_verifier
    assert pending.return_to == "/ping"
    assert "_pending" not in state.get_delta().get(AuthState.get_full_name(), {})


async def test_each_login_gets_fresh_secrets(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    first, second = new_tab(), new_tab(token="tab-2")
    a, b = await login(first, provider), await login(second, provider)
    for name in ("state", "nonce", "code_challenge"):
        assert parse_qs(urlsplit(a).query)[name] != parse_qs(urlsplit(b).query)[name]


@pytest.mark.parametrize(
    ("param", "expected"),
    [("audience", ["audience"]), ("resource", ["resource"]), ("both", ["audience", "resource"])],
)
def test_audience_parameter_is_configurable(param: str, expected: list[str]) -> None:
    settings = Settings(auth_issuer=ISSUER, auth_audience_param=param)  # pyright: ignore[reportArgumentType]
    pending = oidc.new_pending_login(FRONTEND + "/callback", "/")
    url = oidc.authorization_url(
        {"authorization_endpoint": ISSUER + "authorize"}, settings, pending
    )
    query = parse_qs(urlsplit(url).query)
    assert [name for name in ("audience", "resource") if name in query] == expected


@pytest.mark.parametrize(
    ("settings", "prompt"),
    [
        (Settings(auth_issuer=ISSUER), ["consent"]),
        (Settings(auth_issuer=ISSUER, auth_scope="openid read:messages"), None),
        (Settings(auth0_domain="tenant.auth0.test"), None),
        (Settings(), None),
    ],
    ids=["generic provider", "no offline_access", "auth0", "embedded"],
)
def test_offline_access_asks_for_consent_where_the_spec_needs_it(
    settings: Settings, prompt: list[str] | None
) -> None:
    pending = oidc.new_pending_login(FRONTEND + "/callback", "/")
    url = oidc.authorization_url(
        {"authorization_endpoint": ISSUER + "authorize"}, settings, pending
    )
    assert parse_qs(urlsplit(url).query).get("prompt") == prompt


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("/profile", "/profile"),
        ("/ping?x=1", "/ping?x=1"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
        ("profile", "/"),
        ("/\tevil", "/"),
    ],
)
def test_return_to_is_a_local_path_only(given: str, safe: str) -> None:
    assert oidc.safe_return_path(given) == safe


# --- the callback --------------------------------------------------------------------------


async def test_good_callback_signs_in_and_keeps_tokens_on_the_server(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab("/ping")
    url = await login(state, provider, "/profile")
    events = await callback(state, f"code=abc&state={state_of(url)}")

    [form] = provider.token_requests
    assert form["code"] == ["abc"]
    assert form["code_verifier"][0]
    assert form["redirect_uri"] == [FRONTEND + "/callback"]
    assert state.signed_in
    assert state.user_name == "Alice"
    assert state.user_picture == "https://p.test/a.png"
    assert state.scopes == ["openid", "profile", "read:messages"]
    assert state.error_title == ""
    # The browser goes to the backend once, to swap a one-time ticket for its cookie.
    [bind] = navigations(events)
    assert bind.startswith(BACKEND + "/auth/session?ticket=")
    # SECURITY 19: no token in anything the browser gets.
    delta = json.dumps(state.get_delta(), default=str)
    stored_id_token = (
        await session.read_session(state._session_id) or session.ServerSession()
    ).id_token
    for secret in ("access-1", "refresh-1", stored_id_token, state._session_id):
        assert secret
        assert secret not in delta
    stored = await session.read_session(state._session_id)
    assert stored is not None
    assert stored.access_token == "access-1"
    assert stored.refresh_token == "refresh-1"
    ticket = await session.redeem_ticket(bind.split("ticket=")[1])
    assert ticket is not None
    assert ticket.return_to == "/profile"
    assert ticket.session_id == state._session_id
    assert await session.redeem_ticket(bind.split("ticket=")[1]) is None  # one use


@pytest.mark.parametrize(
    "query",
    ["code=abc&state=forged", "code=abc", "code=abc&state="],
    ids=["foreign state", "missing state", "empty state"],
)
async def test_bad_state_is_refused_before_any_token_request(
    env: StateManagerMemory, provider: FakeProvider, query: str
) -> None:
    state = new_tab()
    await login(state, provider)
    await callback(state, query)
    assert provider.token_requests == []
    assert not state.signed_in
    assert state.error_title == "This sign-in cannot be finished here"


async def test_a_replayed_callback_is_refused(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    query = f"code=abc&state={state_of(url)}"
    await callback(state, query)
    assert state.signed_in
    await callback(state, query)
    assert len(provider.token_requests) == 1
    assert state.error_title == "This sign-in cannot be finished here"


async def test_state_is_tied_to_the_tab_that_started_the_login(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    started, other = new_tab(), new_tab(token="tab-2")
    url = await login(started, provider)
    await callback(other, f"code=abc&state={state_of(url)}")
    assert provider.token_requests == []
    assert not other.signed_in


@pytest.mark.parametrize(
    ("error", "title"),
    [
        ("access_denied", "Sign-in was cancelled"),
        ("login_required", "Please sign in"),
        ("consent_required", "Your consent is needed"),
        ("temporarily_unavailable", "The sign-in provider reported an error"),
    ],
)
async def test_provider_errors_are_explained(
    env: StateManagerMemory, provider: FakeProvider, error: str, title: str
) -> None:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"error={error}&error_description=nope&state={state_of(url)}")
    assert state.error_title == title
    assert "Log In" in state.error_detail
    assert provider.token_requests == []
    assert not state.busy


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"nonce": "someone-elses"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"aud": "another-client"}, "audience"),
        ({"iss": "https://idp.example.test"}, "issuer"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": [CLIENT_ID, "x"], "azp": "x"}, "authorized party"),
    ],
)
async def test_bad_id_tokens_are_refused(
    env: StateManagerMemory, provider: FakeProvider, claims: dict[str, Any], words: str
) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.id_claims = claims
    await callback(state, f"code=abc&state={state_of(url)}")
    assert not state.signed_in
    assert state.error_title == "The sign-in could not be verified"
    assert words in state.error_detail.lower()
    assert state._session_id == ""


async def test_an_id_token_signed_by_another_key_is_refused(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.sign_with = provider.other_key
    await callback(state, f"code=abc&state={state_of(url)}")
    assert not state.signed_in
    assert "signature" in state.error_detail.lower()


async def test_an_issuer_mix_up_is_refused(env: StateManagerMemory, provider: FakeProvider) -> None:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}&iss=https://evil.example/")
    assert provider.token_requests == []
    assert state.error_title == "The answer came from another provider"


async def test_an_unreachable_provider_is_explained(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    provider.down = True
    state = new_tab()
    events = await run(AuthState.login, state, "")
    assert navigations(events) == []
    assert state.error_title == "The sign-in provider cannot be reached"
    assert "AUTH_ISSUER" in state.error_detail
    assert not state.busy


async def test_a_rejected_code_is_explained(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.token_error = "invalid_grant"
    await callback(state, f"code=abc&state={state_of(url)}")
    assert state.error_title == "The sign-in has expired or was already used"


async def test_a_new_login_gets_a_new_session_id_and_ends_the_old_one(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=a&state={state_of(url)}")
    first = state._session_id
    url = await login(state, provider)
    await callback(state, f"code=b&state={state_of(url)}")
    assert state._session_id != first
    assert await session.read_session(first) is None
    assert await session.read_session(state._session_id) is not None


# --- restore, refresh, logout ---------------------------------------------------------------


async def signed_in(provider: FakeProvider) -> AuthState:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}")
    assert state.signed_in
    return state


async def test_another_tab_with_the_cookie_is_signed_in(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    first = await signed_in(provider)
    cookie = f"other=1; {session.COOKIE_NAME}={first._session_id}"
    second = new_tab("/profile", cookie=cookie, token="tab-2")
    await run(AuthState.restore, second)
    assert second.signed_in
    assert second.user_email == "alice@example.test"
    stored = await session.read_session(first._session_id)
    assert stored is not None
    assert stored.tabs == ["tab-1", "tab-2"]


async def test_a_forged_session_id_signs_nobody_in(env: StateManagerMemory) -> None:
    state = new_tab(cookie=f"{session.COOKIE_NAME}=made-up")
    await run(AuthState.restore, state)
    assert not state.signed_in


async def expire(state: AuthState) -> None:
    async with session.modify_session(state._session_id) as stored:
        stored.expires_at = time.time() + 5


async def test_refresh_rotates_and_runs_once_for_concurrent_callers(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    await expire(state)
    tokens = await asyncio.gather(*(state.access_token() for _ in range(5)))
    refreshes = [f for f in provider.token_requests if f["grant_type"] == ["refresh_token"]]
    assert len(refreshes) == 1  # SECURITY 23: one refresh at a time per session
    assert refreshes[0]["refresh_token"] == ["refresh-1"]
    assert set(tokens) == {"access-2"}
    stored = await session.read_session(state._session_id)
    assert stored is not None
    assert stored.refresh_token == "refresh-2"  # the rotated one replaced the old


async def test_invalid_grant_on_refresh_signs_out_cleanly(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    await expire(state)
    provider.token_error = "invalid_grant"
    assert await state.access_token() is None
    assert not state.signed_in
    assert state.error_title == "Your session has ended"
    assert await session.read_session(state._session_id) is None


async def test_an_expired_session_without_refresh_token_asks_to_sign_in(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    async with session.modify_session(state._session_id) as stored:
        stored.refresh_token = ""
        stored.expires_at = time.time() - 1
    at(state, "/ping", cookie=f"{session.COOKIE_NAME}={state._session_id}")
    await run(AuthState.restore, state)
    assert not state.signed_in
    assert state.error_title == "Your session has expired"


async def test_logout_revokes_and_ends_at_the_provider(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    old_id = state._session_id
    events = await run(AuthState.logout, state)
    assert provider.revoked == ["refresh-1"]  # SECURITY 24
    assert not state.signed_in
    assert await session.read_session(old_id) is None  # SECURITY 20: the old id is dead
    [url] = navigations(events)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(ISSUER + "logout?")
    assert query["post_logout_redirect_uri"] == [FRONTEND + "/"]
    assert query["id_token_hint"][0].count(".") == 2
    # A copied cookie with the old id no longer signs anyone in.
    copy = new_tab(cookie=f"{session.COOKIE_NAME}={old_id}", token="tab-9")
    await run(AuthState.restore, copy)
    assert not copy.signed_in


async def test_logout_with_the_provider_down_stays_in_the_app(
    env: StateManagerMemory, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    old_id = state._session_id
    provider.down = True  # discovery is cached, the provider no longer answers
    events = await run(AuthState.logout, state)
    assert navigations(events) == []  # not sent to an error page
    assert not state.signed_in
    assert state.error_title == "Signed out of pingapp only"
    assert await session.read_session(old_id) is None


def test_auth0_logout_without_end_session_endpoint() -> None:
    settings = Settings(auth0_domain="tenant.auth0.test")
    url = oidc.logout_url({}, settings, id_token=None, return_to=FRONTEND + "/")
    assert url is not None
    assert url.startswith("https://tenant.auth0.test/v2/logout?")
    assert parse_qs(urlsplit(url).query) == {"client_id": [CLIENT_ID], "returnTo": [FRONTEND + "/"]}
