"""AuthState and the sign-in's HTTP hops: every path of login, callback, refresh
and logout.

The provider here is an `httpx2.MockTransport` answering discovery, JWKS, token,
userinfo and revocation with tokens this test signs; sessions, pending logins and
tickets live in a real `Vault` on a temporary `DiskStore`. The two HTTP hops
(`/auth/login`, `/auth/session`) are the real routes (`create_auth_routes`, driven
through `httpx2.ASGITransport`). Each tab has a browser whose raw cookies only the
test knows (`JARS`); what its handlers see of them is what the app's handshake
(`handshake_scope`) makes: one server-made Cookie header of references. Browser
tests cover the same flow against the embedded provider.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData
from starlette.requests import cookie_parser

from pingapp.auth import routes
from pingapp.auth.routes import create_auth_routes
from pingapp.auth.state import LEAVING_GRACE, AuthState, login_url
from pingapp.context import build_context, context, use_context
from pingapp.oidc import login as request
from pingapp.oidc.cookies import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    HandshakeRefs,
    handshake_scope,
    new_secret,
)
from pingapp.oidc.session import LOGIN_TTL, LoginRecord, ServerSession, Vault
from pingapp.oidc.store import DiskStore
from pingapp.routes import AUTH, SESSION_HOP
from pingapp.settings import Settings

ISSUER = "https://idp.example.test/"
FRONTEND = "http://localhost:3000"
BACKEND = "http://localhost:8000"
CLIENT_ID = "pingapp"
GENERIC = "This sign-in cannot be finished here"


class FakeProvider:
    """Just enough of an OpenID Provider, with knobs to misbehave."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.id_claims: dict[str, Any] = {}
        self.sign_with = self.key
        self.token_requests: list[dict[str, list[str]]] = []
        self.revoked: list[str] = []
        #: Every request the provider got ("METHOD /path"), reachable or not.
        self.requests: list[str] = []
        self.token_error: str | None = None
        self.refresh_delay = 0.0
        self.nonce = ""
        self.counter = 0
        self.down = False
        #: Extra discovery fields (PAR, RFC 9207 ...) and what was pushed to /par.
        self.metadata: dict[str, Any] = {}
        self.pushed: list[dict[str, list[str]]] = []

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

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx2.ConnectError("down", request=request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx2.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": ISSUER + "authorize",
                    "token_endpoint": ISSUER + "oauth/token",
                    "jwks_uri": ISSUER + "jwks",
                    "userinfo_endpoint": ISSUER + "userinfo",
                    "revocation_endpoint": ISSUER + "revoke",
                    "end_session_endpoint": ISSUER + "logout",
                    **self.metadata,
                },
            )
        if path == "/par":
            self.pushed.append(parse_qs(request.content.decode()))
            return httpx2.Response(
                201, json={"request_uri": "urn:ietf:params:oauth:request_uri:r1", "expires_in": 60}
            )
        if path == "/jwks":
            jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
            return httpx2.Response(200, json={"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
        if path == "/oauth/token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            if self.token_error:
                return httpx2.Response(400, json={"error": self.token_error})
            self.counter += 1
            return httpx2.Response(
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
            return httpx2.Response(200, json={"sub": "user-1", "picture": "https://p.test/a.png"})
        if path == "/revoke":
            self.revoked.append(parse_qs(request.content.decode())["token"][0])
            return httpx2.Response(200)
        return httpx2.Response(404)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


async def token_of(state: AuthState, rejected: str | None = None) -> str | None:
    """The access token `_access_token` gives (its credential's token), or None."""
    credential = await state._access_token(rejected)
    return credential.token if credential else None


@pytest.fixture
async def env(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Vault]:
    """Settings, the shared client (to the fake provider) and a vault on disk; the
    login step's per-address limit starts afresh."""
    monkeypatch.setattr(routes, "_login_starts", MovingWindowRateLimiter(MemoryStorage()))
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID)
    vault = Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(provider.handler)) as client:
        with use_context(fake_context(client, settings, vault)):
            yield vault


def fake_context(client: httpx2.AsyncClient, settings: Settings, vault: Vault):
    """The application context of a backend at BACKEND serving FRONTEND, whose
    other tabs are not open (the notifier does nothing)."""
    return build_context(client, settings=settings, vault=vault, backend=BACKEND, frontend=FRONTEND)


# --- a browser, its tabs and their connections --------------------------------------------

#: The Cookie header each tab's browser sends (raw values: the server never keeps them).
JARS: weakref.WeakKeyDictionary[AuthState, str] = weakref.WeakKeyDictionary()


def handshake_cookie(cookie: str) -> str:
    """What handlers see as `router.headers.cookie` on a connection whose browser
    sent `cookie`: the one header `handshake_scope` makes (references only)."""
    ctx = context()
    scope = {
        "type": "websocket",
        "path": "/_reflex/_event",
        "headers": [(b"cookie", cookie.encode("latin-1"))] if cookie else [],
        "query_string": b"EIO=4&transport=websocket",
    }
    rewritten, refs = handshake_scope(scope, secure=ctx.secure, reference=ctx.vault.reference)
    [header] = [value for name, value in rewritten["headers"] if name.lower() == b"cookie"]
    assert header == refs.header()
    return header.decode()


def new_tab(path: str = "/", cookie: str = "", token: str = "tab-1") -> AuthState:
    state = AuthState(_reflex_internal_init=True)  # pyright: ignore[reportCallIssue]
    at(state, path, cookie=cookie, token=token)
    return state


def at(
    state: AuthState,
    path: str | None = None,
    cookie: str | None = None,
    token: str | None = None,
) -> None:
    """Point the tab at `path`. Given a `cookie` (the raw header its browser sends),
    the tab connects anew and its handlers see what the handshake made of it; else
    the connection and client token stay as they were."""
    current = state.router
    if cookie is not None:
        JARS[state] = cookie
    state.router = RouterData(
        session=SessionData(client_token=current.session.client_token if token is None else token),
        headers=HeaderData(
            cookie=current.headers.cookie if cookie is None else handshake_cookie(cookie)
        ),
        url=current.url if path is None else ReflexURL(FRONTEND + path),
    )


def browser_cookie(state: AuthState) -> str:
    """The raw Cookie header the tab's browser sends."""
    return JARS.get(state, "")


def with_cookie(header: str, name: str, value: str | None) -> str:
    """`header` with cookie `name` set to `value` (or removed, for None)."""
    cookies = {key: item for key, item in cookie_parser(header).items() if key != name}
    if value is not None:
        cookies[name] = value
    return "; ".join(f"{key}={item}" for key, item in cookies.items())


def cookie_of(state: AuthState, name: str) -> str:
    """The raw value of the browser's cookie `name` ('' if it has none)."""
    return cookie_parser(browser_cookie(state)).get(name, "")


def refs_of(state: AuthState) -> HandshakeRefs:
    """What the tab's handlers know of its cookies."""
    return HandshakeRefs.from_header(state.router.headers.cookie)


async def run(handler, state: AuthState, *args: Any) -> list[Any]:
    """Run an event handler to its end; return what it yielded or returned."""
    result = handler.fn(state, *args)
    if inspect.isasyncgen(result):
        return [item async for item in result]
    if inspect.isgenerator(result):
        return list(result)
    if inspect.isawaitable(result):
        return [await result]
    return [result]


def redirects(events: list[Any]) -> list[str]:
    """The app pages `rx.redirect(...)` events in `events` go to (no page load)."""
    found = []
    for event in events:
        handler = getattr(event, "handler", None)
        if getattr(getattr(handler, "fn", None), "__qualname__", "") != "_redirect":
            continue
        args = {getattr(name, "_js_expr", ""): value for name, value in event.args}
        found.append(getattr(args["path"], "_var_value", None))
    return found


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def state_of(url: str) -> str:
    return query_of(url)["state"][0]


# --- the two HTTP hops, as the browser takes them -----------------------------------------


async def auth_route(
    url: str, cookie: str = "", client: tuple[str, int] = ("127.0.0.1", 50_000)
) -> httpx2.Response:
    """GET `url` (under BACKEND/auth) from the real routes, as a browser at `client`
    sending `cookie`."""
    assert url.startswith(BACKEND + AUTH + "/")
    transport = httpx2.ASGITransport(app=create_auth_routes(), root_path=AUTH, client=client)
    async with httpx2.AsyncClient(transport=transport, base_url=BACKEND + AUTH) as http:
        return await http.get(url, headers={"cookie": cookie} if cookie else {})


def set_cookies(response: httpx2.Response) -> dict[str, Morsel[str]]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def after(cookie: str, response: httpx2.Response) -> str:
    """The Cookie header the browser sends once it took `response`'s Set-Cookie."""
    for name, morsel in set_cookies(response).items():
        cookie = with_cookie(cookie, name, None if morsel["max-age"] == "0" else morsel.value)
    return cookie


async def peek_login(handle: str) -> LoginRecord:
    """The pending login stored under `handle`, left in place."""
    vault = context().vault
    record = await vault.take_login(handle)
    assert record is not None
    await vault.put_login(handle, record)
    return record


def pending_state(provider: FakeProvider, url: str) -> str:
    """The `state` of the authorization request behind `url` (pushed, with PAR)."""
    query = query_of(url)
    return query["state"][0] if "state" in query else provider.pushed[-1]["state"][0]


async def login(
    state: AuthState,
    provider: FakeProvider,
    return_to: str = "",
    *,
    prompt: str = "",
    step_up: bool = False,
) -> str:
    """Follow Log In's link (`/auth/login`) from the tab's browser; return the
    provider's authorization URL it is sent to, and arm the provider's nonce.

    The browser comes back from the provider on a new connection, whose handshake
    carries the new login cookie next to whatever cookies it had."""
    link = login_url(BACKEND, return_to, prompt=prompt, step_up=step_up)
    answer = await auth_route(link, browser_cookie(state))
    assert answer.status_code == 303, answer.text
    url = answer.headers["location"]
    at(state, cookie=after(browser_cookie(state), answer))
    provider.nonce = (await peek_login(pending_state(provider, url))).login.nonce
    return url


async def callback(state: AuthState, query: str, cookie: str | None = None) -> list[Any]:
    at(state, "/callback?" + query, cookie=cookie)
    return await run(AuthState.handle_callback, state)


async def bind(state: AuthState) -> str:
    """The `/auth/session` hop the callback sent the tab to (the real route), then
    the page load it redirects to; the session cookie's value is returned."""
    url = state.next_url
    assert url.startswith(BACKEND + SESSION_HOP + "?ticket=")
    answer = await auth_route(url, browser_cookie(state))
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(FRONTEND + "/")
    at(state, location.removeprefix(FRONTEND), cookie=after(browser_cookie(state), answer))
    await run(AuthState.restore, state)
    return cookie_of(state, SESSION_COOKIE)


# --- the authorization request (the /auth/login step) -------------------------------------


async def test_login_sends_pkce_state_nonce_audience_and_scope(
    env: Vault, provider: FakeProvider
) -> None:
    answer = await auth_route(login_url(BACKEND, "/ping"))
    assert answer.status_code == 303
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    url = answer.headers["location"]
    query = query_of(url)
    assert url.startswith(ISSUER + "authorize?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [FRONTEND + "/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["audience"] == ["urn:pingapp:api"]
    assert "read:messages" in query["scope"][0].split()
    # SECURITY 31: the login cookie binds the pending login to this browser; the
    # record keeps only its keyed reference.
    [(name, cookie)] = set_cookies(answer).items()
    assert name == LOGIN_COOKIE
    assert cookie["httponly"]
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == int(LOGIN_TTL)
    binding = cookie.value
    record = await env.take_login(query["state"][0])
    assert record is not None
    assert await env.take_login(query["state"][0]) is None  # one use
    assert record.browser == env.reference(binding) != binding
    assert env.matches(binding, record.browser)
    pending = record.login
    assert query["state"] == [pending.state]
    assert query["nonce"] == [pending.nonce]
    # SECURITY 13: the verifier is long, random, and only its hash leaves the server.
    assert len(pending.code_verifier) >= 43
    assert pending.code_verifier not in url
    assert pending.code_verifier not in answer.text
    assert query["code_challenge"][0] != pending.code_verifier
    assert pending.return_to == "/ping"
    assert pending.max_age is None
    assert "max_age" not in query


async def test_each_login_gets_fresh_secrets(env: Vault, provider: FakeProvider) -> None:
    first, second = new_tab(), new_tab(token="tab-2")
    a, b = await login(first, provider), await login(second, provider)
    for name in ("state", "nonce", "code_challenge"):
        assert query_of(a)[name] != query_of(b)[name]
    assert cookie_of(first, LOGIN_COOKIE) != cookie_of(second, LOGIN_COOKIE)
    assert refs_of(first).login != refs_of(second).login


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/profile?x=1", "/profile?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/callback", "/"),  # never a place to come back to
        ("", "/"),
    ],
)
async def test_the_login_step_keeps_a_local_return_path_only(
    env: Vault, provider: FakeProvider, given: str, kept: str
) -> None:
    answer = await auth_route(login_url(BACKEND, given))
    record = await env.take_login(state_of(answer.headers["location"]))
    assert record is not None
    assert record.login.return_to == kept


def test_login_url_builds_the_link_to_the_login_step() -> None:
    assert login_url(BACKEND).startswith(BACKEND + "/auth/login")
    assert login_url(BACKEND, "/ping?x=1") == BACKEND + "/auth/login?return_to=%2Fping%3Fx%3D1"
    assert query_of(login_url(BACKEND, "/", prompt="consent", step_up=True)) == {
        "return_to": ["/"],
        "prompt": ["consent"],
        "step_up": ["1"],
    }


async def test_prompt_consent_is_asked_for_only_by_the_review_link(
    env: Vault, provider: FakeProvider
) -> None:
    # No offline_access: the provider gets no prompt unless the link asks for consent.
    settings = Settings(
        auth_issuer=ISSUER, auth_client_id=CLIENT_ID, auth_scope="openid profile read:messages"
    )
    with use_context(fake_context(context().client, settings, env)):
        plain = (await auth_route(login_url(BACKEND, "/"))).headers["location"]
        review = (await auth_route(login_url(BACKEND, "/", prompt="consent"))).headers["location"]
        other = (await auth_route(login_url(BACKEND, "/", prompt="none"))).headers["location"]
    assert "prompt" not in query_of(plain)
    assert query_of(review)["prompt"] == ["consent"]
    assert "prompt" not in query_of(other)  # no other prompt can be slipped in


async def test_the_login_step_is_rate_limited_per_client_address(
    env: Vault, provider: FakeProvider
) -> None:
    """SECURITY 47: the login step stores a record and calls the provider, so one
    address may start only LOGIN_RATE_LIMIT logins a minute; others are not held back."""
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID, login_rate_limit=3)
    with use_context(fake_context(context().client, settings, env)):
        for _ in range(3):
            assert (await auth_route(login_url(BACKEND, "/"))).status_code == 303
        stored, calls = await env.store.count(), len(provider.requests)
        refused = await auth_route(login_url(BACKEND, "/"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Too many sign-ins" in refused.text
        assert "set-cookie" not in refused.headers
        assert await env.store.count() == stored  # nothing stored ...
        assert len(provider.requests) == calls  # ... and nothing asked of the provider
        elsewhere = await auth_route(login_url(BACKEND, "/"), client=("192.0.2.7", 50_000))
        assert elsewhere.status_code == 303


async def test_a_full_store_answers_the_login_step_with_503(
    env: Vault, provider: FakeProvider, tmp_path: Path
) -> None:
    full = Vault(DiskStore(tmp_path / "full", max_records=0), Fernet.generate_key(), max_age=86_400)
    with use_context(fake_context(context().client, context().settings, full)):
        answer = await auth_route(login_url(BACKEND, "/"))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "set-cookie" not in answer.headers  # no login cookie for a login not kept


@pytest.mark.parametrize(
    ("param", "expected"),
    [("audience", ["audience"]), ("resource", ["resource"]), ("both", ["audience", "resource"])],
)
def test_audience_parameter_is_configurable(param: str, expected: list[str]) -> None:
    settings = Settings(auth_issuer=ISSUER, auth_audience_param=param)  # pyright: ignore[reportArgumentType]
    pending = request.new_pending_login(FRONTEND + "/callback", "/")
    query = request.authorization_params(settings, pending)
    assert [name for name in ("audience", "resource") if name in query] == expected
    assert all(query[name] == settings.auth_audience for name in expected)


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
    pending = request.new_pending_login(FRONTEND + "/callback", "/")
    params = request.authorization_params(settings, pending)
    assert ([params["prompt"]] if "prompt" in params else None) == prompt


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
    assert request.safe_return_path(given) == safe


async def test_the_page_guard_links_to_the_login_step_and_stores_nothing(
    env: Vault, provider: FakeProvider
) -> None:
    """Log In is no websocket event: a signed-out tab is sent to the login step,
    and nothing is stored or asked of the provider until the browser gets there."""
    assert not {"login", "review_permissions", "sign_in_recently"} & set(AuthState.event_handlers)
    state = new_tab("/ping")
    await run(AuthState.require_sign_in, state)
    assert state.next_url == BACKEND + "/auth/login?return_to=%2Fping"
    assert state.busy
    assert await env.store.count() == 0
    assert provider.requests == []
    await run(AuthState.require_sign_in, state)  # busy: asked once
    signed = await signed_in(provider, token="tab-2")
    await run(AuthState.require_sign_in, signed)
    assert signed.next_url == ""  # a signed-in tab stays


# --- the callback --------------------------------------------------------------------------


async def test_good_callback_signs_in_and_keeps_tokens_on_the_server(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab("/ping")
    url = await login(state, provider, "/profile")
    binding = cookie_of(state, LOGIN_COOKIE)
    await callback(state, f"code=abc&state={state_of(url)}")

    [form] = provider.token_requests
    assert form["code"] == ["abc"]
    assert form["code_verifier"][0]
    assert form["redirect_uri"] == [FRONTEND + "/callback"]
    assert state.error_title == ""
    # SECURITY 46: this tab's state is keyed without the session cookie the
    # connection does not have yet: nothing of the session goes into it.
    assert not state.signed_in
    assert state._session_hash == ""
    assert state.user_name == state.claims_json == state.token_claims == ""
    # The code and state leave the address bar; no page load for that.
    assert state.clean_url == "/callback"
    # The browser goes to the backend once, to swap a one-time ticket for its cookie.
    hop = state.next_url
    assert hop.startswith(BACKEND + "/auth/session?ticket=")
    [ticket_value] = query_of(hop)["ticket"]
    ticket = await env.redeem_ticket(ticket_value)
    assert ticket is not None
    assert ticket.return_to == "/profile"
    # Only the browser that logged in gets the cookie.
    assert env.matches(binding, ticket.browser)
    assert await env.redeem_ticket(ticket_value) is None  # one use
    # The store keeps the id's keyed reference only; the id itself goes to the cookie.
    stored = await env.load(env.reference(ticket.session_id))
    assert stored is not None
    assert stored.access_token == "access-1"
    assert stored.refresh_token == "refresh-1"
    # The callback's tab state is keyed without the session: not one of its tabs.
    assert stored.tabs == []
    # The page the cookie's browser loads shows the session, and joins its tabs.
    at(state, ticket.return_to, cookie=f"{SESSION_COOKIE}={ticket.session_id}")
    await run(AuthState.restore, state)
    assert state.signed_in
    assert state._session_hash == env.reference(ticket.session_id)
    joined = await env.load(env.reference(ticket.session_id))
    assert joined is not None and joined.tabs == [state.router.session.client_token]
    assert state.user_name == "Alice"
    assert state.user_picture == "https://p.test/a.png"
    assert state.scopes == ["openid", "profile", "read:messages"]
    # SECURITY 19: no token in anything the browser gets.
    delta = json.dumps(state.get_delta(), default=str)
    for secret in ("access-1", "refresh-1", stored.id_token, ticket.session_id, binding):
        assert secret
        assert secret not in delta


async def test_the_session_hop_sets_the_session_cookie_and_ends_the_login_cookie(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider, "/profile")
    await callback(state, f"code=abc&state={state_of(url)}")
    answer = await auth_route(state.next_url, browser_cookie(state))
    assert answer.status_code == 303
    assert answer.headers["location"] == FRONTEND + "/profile"
    cookies = set_cookies(answer)
    session_cookie, login_cookie = cookies[SESSION_COOKIE], cookies[LOGIN_COOKIE]
    assert await env.load(env.reference(session_cookie.value)) is not None
    assert session_cookie["httponly"]
    assert session_cookie["samesite"].lower() == "lax"
    assert login_cookie["max-age"] == "0"
    # The ticket was spent.
    again = await auth_route(state.next_url, browser_cookie(state))
    assert again.status_code == 400
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize(
    "query",
    ["code=abc&state=forged", "code=abc", "code=abc&state="],
    ids=["foreign state", "missing state", "empty state"],
)
async def test_bad_state_is_refused_before_any_token_request(
    env: Vault, provider: FakeProvider, query: str
) -> None:
    state = new_tab()
    await login(state, provider)
    await callback(state, query)
    assert provider.token_requests == []
    assert not state.signed_in
    assert state.error_title == GENERIC


async def test_a_replayed_callback_is_refused(env: Vault, provider: FakeProvider) -> None:
    state = new_tab()
    url = await login(state, provider)
    query = f"code=abc&state={state_of(url)}"
    await callback(state, query)
    assert state.error_title == ""
    assert state.next_url.startswith(BACKEND + SESSION_HOP)
    await callback(state, query)
    assert len(provider.token_requests) == 1
    assert state.error_title == GENERIC


async def test_the_callbacks_on_load_sent_again_after_the_session_hop_changes_nothing(
    env: Vault, provider: FakeProvider
) -> None:
    """A reconnect re-sends the callback page's on_load with the address already
    cleaned; once the hop set the session cookie there is nothing to finish: no error
    (the page after the hop would show it under Log Out), no navigation (it would cut
    the hop short), no call to the provider."""
    state = await signed_in(provider)
    requests = len(provider.token_requests)
    before = (state.next_url, state.busy, state.error_title, state.user_name)
    await callback(state, "", cookie=browser_cookie(state))
    assert (state.next_url, state.busy, state.error_title, state.user_name) == before
    assert state.signed_in
    assert len(provider.token_requests) == requests
    # Without a live session, a bare /callback still says it cannot be finished.
    anonymous = new_tab(token="tab-2")
    await callback(anonymous, "")
    assert anonymous.error_title == GENERIC
    # Nor does a callback that carries a code and state skip the checks when signed in.
    await callback(state, "code=abc&state=forged", cookie=browser_cookie(state))
    assert state.error_title == GENERIC


async def test_a_bare_callback_opened_in_a_new_tab_of_a_signed_in_browser_shows_the_session(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    other = new_tab(token="tab-2", cookie=browser_cookie(state))
    await callback(other, "")
    assert other.signed_in and not other.busy
    assert other.error_title == "" and other.next_url == ""
    assert other.user_name == state.user_name


@pytest.mark.parametrize(
    "connection",
    [
        "no cookie",
        "another login cookie",
        "the stored reference sent as a cookie",
        "the reference sent as the server's own pair",
        "another browser",
    ],
)
async def test_a_callback_without_this_logins_cookie_is_refused(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """SECURITY 31: the state is tied to the browser that started the login."""
    started, other = new_tab(), new_tab(token="tab-2")
    url = await login(started, provider)
    stored = env.reference(cookie_of(started, LOGIN_COOKIE))  # what the record keeps
    if connection == "no cookie":
        cookie = ""
    elif connection == "another login cookie":
        cookie = f"{LOGIN_COOKIE}={new_secret()}"
    elif connection == "the stored reference sent as a cookie":
        # A reference read from the store is no cookie: it is never taken as one.
        cookie = f"{LOGIN_COOKIE}={stored}"
    elif connection == "the reference sent as the server's own pair":
        # The handshake drops every client Cookie header, this one too.
        cookie = f"pingapp-login-ref={stored}"
    else:
        await login(other, provider)  # a login cookie of its own
        cookie = browser_cookie(other)
    events = await callback(other, f"code=abc&state={state_of(url)}", cookie=cookie)
    assert refs_of(other).login != stored
    assert provider.token_requests == []
    assert redirects(events) == []
    assert other.next_url == ""
    assert not other.signed_in
    assert other._session_hash == ""
    assert other.error_title == GENERIC
    # The answer is spent: one use, whoever presents it.
    await callback(started, f"code=abc&state={state_of(url)}")
    assert not started.signed_in
    assert provider.token_requests == []


@pytest.mark.parametrize("cookie", ["none", "some login cookie"])
async def test_a_login_bound_to_no_browser_cannot_be_finished(
    env: Vault, provider: FakeProvider, cookie: str
) -> None:
    """A pending login stored without a browser's reference (none made by the login
    step is) is finished by nobody, whatever login cookie comes."""
    state = new_tab()
    pending = request.new_pending_login(FRONTEND + "/callback", "/")
    await env.put_login(pending.state, LoginRecord(login=pending))
    header = "" if cookie == "none" else f"{LOGIN_COOKIE}={new_secret()}"
    await callback(state, f"code=abc&state={pending.state}", cookie=header)
    assert provider.token_requests == []
    assert not state.signed_in
    assert state.error_title == GENERIC


@pytest.mark.parametrize("connection", ["no cookie", "another login cookie"])
async def test_a_stray_error_callback_gets_the_generic_answer(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """The state is checked before the provider's `error` is looked at."""
    started, other = new_tab(), new_tab(token="tab-2")
    url = await login(started, provider)
    cookie = "" if connection == "no cookie" else f"{LOGIN_COOKIE}={new_secret()}"
    await callback(
        other, f"error=access_denied&error_description=x&state={state_of(url)}", cookie=cookie
    )
    assert other.error_title == GENERIC
    assert provider.token_requests == []


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
    env: Vault, provider: FakeProvider, error: str, title: str
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
    env: Vault, provider: FakeProvider, claims: dict[str, Any], words: str
) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.id_claims = claims
    await callback(state, f"code=abc&state={state_of(url)}")
    assert not state.signed_in
    assert state.error_title == "The sign-in could not be verified"
    assert words in state.error_detail.lower()
    assert state._session_hash == ""
    assert state.next_url == ""
    assert await env.store.count() == 0  # no session, no ticket


async def test_an_id_token_signed_by_another_key_is_refused(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.sign_with = provider.other_key
    await callback(state, f"code=abc&state={state_of(url)}")
    assert not state.signed_in
    assert "signature" in state.error_detail.lower()


async def test_an_issuer_mix_up_is_refused(env: Vault, provider: FakeProvider) -> None:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}&iss=https://evil.example/")
    assert provider.token_requests == []
    assert state.error_title == "The answer came from another provider"


async def test_an_unreachable_provider_is_explained(env: Vault, provider: FakeProvider) -> None:
    provider.down = True
    answer = await auth_route(login_url(BACKEND, "/ping"))
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "The sign-in provider cannot be reached" in answer.text
    assert "AUTH_ISSUER" in answer.text
    assert "Try again" in answer.text
    assert "set-cookie" not in answer.headers
    assert await env.store.count() == 0


async def test_a_rejected_code_is_explained(env: Vault, provider: FakeProvider) -> None:
    state = new_tab()
    url = await login(state, provider)
    provider.token_error = "invalid_grant"
    await callback(state, f"code=abc&state={state_of(url)}")
    assert state.error_title == "The sign-in has expired or was already used"
    assert state._session_hash == ""


# --- restore, refresh, logout ---------------------------------------------------------------


async def signed_in(provider: FakeProvider, token: str = "tab-1") -> AuthState:
    """A tab signed in the whole way: login step, callback, session hop, page load."""
    state = new_tab(token=token)
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}")
    session_id = await bind(state)
    assert state.signed_in
    assert state.next_url == state.clean_url == ""  # the page load cleared them
    assert refs_of(state).session == state._session_hash == context().vault.reference(session_id)
    assert cookie_of(state, LOGIN_COOKIE) == ""
    assert refs_of(state).login == ""
    return state


async def test_a_new_login_gets_a_new_session_id_and_ends_the_old_one(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    first = state._session_hash
    url = await login(state, provider)  # the old session cookie comes along
    assert refs_of(state).session == first
    await callback(state, f"code=b&state={state_of(url)}")
    session_id = await bind(state)
    assert state._session_hash != first
    assert state._session_hash == env.reference(session_id)
    assert await env.load(first) is None
    assert await env.load(state._session_hash) is not None


async def test_another_tab_with_the_cookie_is_signed_in(env: Vault, provider: FakeProvider) -> None:
    first = await signed_in(provider)
    cookie = f"other=1; {SESSION_COOKIE}={cookie_of(first, SESSION_COOKIE)}"
    second = new_tab("/profile", cookie=cookie, token="tab-2")
    await run(AuthState.restore, second)
    assert second.signed_in
    assert second.user_email == "alice@example.test"
    assert second._session_hash == first._session_hash
    assert await token_of(second) == "access-1"
    stored = await env.load(first._session_hash)
    assert stored is not None
    assert stored.tabs == ["tab-1", "tab-2"]


@pytest.mark.parametrize(
    "forged",
    ["made-up", "well-formed but unknown", "the store key", "the store key as the server's pair"],
)
async def test_a_forged_session_id_signs_nobody_in(env: Vault, forged: str) -> None:
    """SECURITY 45: only the id itself names a session. A store key (its keyed
    reference, as read from Redis or a file) is no cookie: it is never taken for
    one, and referenced again it names nothing."""
    session_id = await env.create(ServerSession(access_token="a", expires_at=time.time() + 300))
    key = env.reference(session_id)
    cookie = {
        "made-up": f"{SESSION_COOKIE}=made-up",
        "well-formed but unknown": f"{SESSION_COOKIE}={new_secret()}",
        "the store key": f"{SESSION_COOKIE}={key}",
        "the store key as the server's pair": f"pingapp-session-ref={key}",
    }[forged]
    before = await env.store.count()
    state = new_tab(cookie=cookie)
    assert refs_of(state).session != key
    await run(AuthState.restore, state)
    assert not state.signed_in
    assert state._session_hash == ""
    assert await token_of(state) is None
    assert await env.load(env.reference(key)) is None
    assert await env.store.count() == before  # a look-up creates nothing


@pytest.mark.parametrize(
    "connection", ["no cookie", "another session's cookie", "the session's store key as cookie"]
)
async def test_a_stolen_client_token_gets_no_access_token(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """SECURITY 25: the tab's `_session_hash` alone (all a stolen Reflex client
    token brings) is not enough: the connection must carry the session's cookie."""
    victim = await signed_in(provider)
    victim_hash = victim._session_hash
    victim_id = cookie_of(victim, SESSION_COOKIE)
    if connection == "no cookie":
        cookie = "other=1"
    elif connection == "another session's cookie":
        attacker = await signed_in(provider, token="tab-2")
        cookie = f"{SESSION_COOKIE}={cookie_of(attacker, SESSION_COOKIE)}"
    else:
        cookie = f"{SESSION_COOKIE}={victim_hash}"  # read from the store
    # The attacker's connection, driving the victim's tab state.
    at(victim, "/ping", cookie=cookie)
    assert victim._session_hash == victim_hash
    assert refs_of(victim).session != victim_hash
    requests_before = len(provider.token_requests)
    assert await token_of(victim) is None
    assert not victim.signed_in
    victim._session_hash = victim_hash  # the same, for a token the API rejected
    assert await token_of(victim, rejected="access-1") is None
    assert len(provider.token_requests) == requests_before  # no refresh either
    # The victim's session is untouched and still works with its cookie.
    stored = await env.load(victim_hash)
    assert stored is not None
    assert stored.access_token == "access-1"
    owner = new_tab(cookie=f"{SESSION_COOKIE}={victim_id}", token="tab-1")
    await run(AuthState.restore, owner)
    assert await token_of(owner) == "access-1"


def test_the_access_token_is_no_event_handler() -> None:
    """Private helpers are not events: no client can ask for a token."""
    assert "access_token" not in AuthState.event_handlers
    assert "_access_token" not in AuthState.event_handlers
    assert not any("token" in name for name in AuthState.event_handlers)
    # No setter a client could reach through `setvar` for the session hash.
    assert not hasattr(AuthState, "set__session_hash")


async def expire(state: AuthState) -> None:
    async with context().vault.modify(state._session_hash) as stored:
        assert stored is not None
        stored.expires_at = time.time() + 5


async def test_refresh_rotates_and_runs_once_for_concurrent_callers(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    await expire(state)
    tokens = await asyncio.gather(*(token_of(state) for _ in range(5)))
    refreshes = [f for f in provider.token_requests if f["grant_type"] == ["refresh_token"]]
    assert len(refreshes) == 1  # SECURITY 23: one refresh at a time per session
    assert refreshes[0]["refresh_token"] == ["refresh-1"]
    assert set(tokens) == {"access-2"}
    stored = await env.load(state._session_hash)
    assert stored is not None
    assert stored.refresh_token == "refresh-2"  # the rotated one replaced the old


async def test_a_rejected_token_is_refreshed_once(env: Vault, provider: FakeProvider) -> None:
    state = await signed_in(provider)
    first, second = await asyncio.gather(
        token_of(state, rejected="access-1"), token_of(state, rejected="access-1")
    )
    assert first == second == "access-2"
    refreshes = [f for f in provider.token_requests if f["grant_type"] == ["refresh_token"]]
    assert len(refreshes) == 1


async def test_invalid_grant_on_refresh_signs_out_cleanly(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    await expire(state)
    provider.token_error = "invalid_grant"
    assert await token_of(state) is None
    assert not state.signed_in
    assert state.error_title == "Your session has ended"
    assert await env.load(state._session_hash) is None
    # What is left is the user's entry in the back-channel logout index, which
    # names no live session any more.
    assert await env.store.count() == 1
    assert await env.sessions_of(ISSUER, sid=None, sub="user-1") == []


async def test_an_expired_session_without_refresh_token_asks_to_sign_in(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    async with env.modify(state._session_hash) as stored:
        assert stored is not None
        stored.refresh_token = ""
        stored.expires_at = time.time() - 1
    session_hash = state._session_hash
    at(state, "/ping")
    await run(AuthState.restore, state)
    assert not state.signed_in
    assert state.error_title == "Your session has expired"
    assert await env.load(session_hash) is None


async def test_an_expired_session_without_refresh_token_gives_no_token(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    async with env.modify(state._session_hash) as stored:
        assert stored is not None
        stored.refresh_token = ""
        stored.expires_at = time.time() - 1
    assert await token_of(state) is None
    assert not state.signed_in
    assert state.error_title == "Your session has expired"
    assert await env.load(state._session_hash) is None


async def test_logout_revokes_and_ends_at_the_provider(env: Vault, provider: FakeProvider) -> None:
    state = await signed_in(provider)
    old_hash = state._session_hash
    old_id = cookie_of(state, SESSION_COOKIE)
    stored = await env.load(old_hash)
    assert stored is not None
    events = await run(AuthState.logout, state)
    assert provider.revoked == ["refresh-1"]  # SECURITY 24
    assert not state.signed_in
    assert state._session_hash == ""
    assert await env.load(old_hash) is None  # SECURITY 20: the old id is dead
    assert redirects(events) == []
    url = state.next_url
    query = query_of(url)
    assert url.startswith(ISSUER + "logout?")
    # No ID token in a URL the browser sees: the provider is told who by a hint.
    assert query == {
        "client_id": [CLIENT_ID],
        "logout_hint": ["user-1"],
        "post_logout_redirect_uri": [FRONTEND + "/"],
    }
    assert stored.id_token not in url
    # A copied cookie with the old id no longer signs anyone in.
    copy = new_tab(cookie=f"{SESSION_COOKIE}={old_id}", token="tab-9")
    await run(AuthState.restore, copy)
    assert not copy.signed_in


async def test_a_tab_leaving_for_the_providers_logout_is_not_sent_to_a_login(
    env: Vault, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect while the browser goes to the provider's logout re-runs the page's
    on_load (restore, then the sign-in guard): the guard must not replace the
    logout's navigation with a login. After the grace, the guard works again."""
    state = await signed_in(provider)
    await run(AuthState.logout, state)
    leaving = state.next_url
    assert leaving.startswith(ISSUER + "logout?")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 1)
    await run(AuthState.restore, state)  # the reconnect's on_load
    await run(AuthState.require_sign_in, state)
    assert not state.next_url.startswith(BACKEND + "/auth/login")
    monkeypatch.setattr(time, "time", lambda: now + LEAVING_GRACE + 1)
    await run(AuthState.restore, state)  # a page load, later
    await run(AuthState.require_sign_in, state)
    assert state.next_url.startswith(BACKEND + "/auth/login")


@pytest.mark.parametrize(
    "connection", ["no cookie", "another session's cookie", "the session's store key as cookie"]
)
async def test_logout_without_the_sessions_cookie_ends_nothing(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """SECURITY 47: a logout that names no session of this tab signs the tab out and
    goes home; it ends nothing, stores nothing and calls no provider."""
    victim = await signed_in(provider)
    victim_hash = victim._session_hash
    if connection == "no cookie":
        cookie = ""
    elif connection == "another session's cookie":
        attacker = await signed_in(provider, token="tab-2")
        cookie = f"{SESSION_COOKIE}={cookie_of(attacker, SESSION_COOKIE)}"
    else:
        cookie = f"{SESSION_COOKIE}={victim_hash}"
    at(victim, cookie=cookie)
    calls, stored = len(provider.requests), await env.store.count()
    events = await run(AuthState.logout, victim)
    assert provider.requests[calls:] == []  # no revocation, no end-session probe
    assert provider.revoked == []
    assert await env.load(victim_hash) is not None
    assert await env.store.count() == stored
    assert not victim.signed_in  # this tab shows nobody any more
    assert victim._session_hash == ""
    assert victim.next_url == ""  # not sent to the provider
    assert redirects(events) == ["/"]


async def test_logout_of_a_tab_that_never_signed_in_calls_nobody(
    env: Vault, provider: FakeProvider
) -> None:
    """SECURITY 47: a signed-out tab's Log Out (any client can send the event)
    costs the server nothing: no provider call (not even discovery), no record."""
    state = new_tab("/profile")
    events = await run(AuthState.logout, state)
    assert provider.requests == []
    assert await env.store.count() == 0
    assert not state.signed_in
    assert not state.busy
    assert state.next_url == ""
    assert redirects(events) == ["/"]


async def test_logout_with_the_provider_down_stays_in_the_app(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    old_hash = state._session_hash
    provider.down = True  # discovery is cached, the provider no longer answers
    events = await run(AuthState.logout, state)
    assert state.next_url == ""  # not sent to an error page
    assert redirects(events) == ["/"]
    assert not state.signed_in
    assert state.error_title == "Signed out of pingapp only"
    assert await env.load(old_hash) is None


def test_logout_url_sends_a_hint_and_no_id_token() -> None:
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID)
    url = request.end_session_url(
        {"end_session_endpoint": ISSUER + "logout"},
        settings,
        logout_hint="user-1",
        return_to=FRONTEND + "/",
    )
    assert url is not None
    assert query_of(url) == {
        "client_id": [CLIENT_ID],
        "logout_hint": ["user-1"],
        "post_logout_redirect_uri": [FRONTEND + "/"],
    }


def test_auth0_logout_without_end_session_endpoint() -> None:
    settings = Settings(auth0_domain="tenant.auth0.test")
    url = request.end_session_url({}, settings, logout_hint="user-1", return_to=FRONTEND + "/")
    assert url is not None
    assert url.startswith("https://tenant.auth0.test/v2/logout?")
    assert query_of(url) == {"client_id": [CLIENT_ID], "returnTo": [FRONTEND + "/"]}


# --- PAR, RFC 9207, max_age ------------------------------------------------------------------


async def test_par_puts_only_client_id_and_request_uri_in_the_browsers_url(
    env: Vault, provider: FakeProvider
) -> None:
    provider.metadata["pushed_authorization_request_endpoint"] = ISSUER + "par"
    state = new_tab("/ping")
    url = await login(state, provider)
    assert query_of(url) == {
        "client_id": [CLIENT_ID],
        "request_uri": ["urn:ietf:params:oauth:request_uri:r1"],
    }
    [pushed] = provider.pushed
    assert pushed["code_challenge_method"] == ["S256"]
    assert pushed["redirect_uri"] == [FRONTEND + "/callback"]
    assert pushed["state"][0] and pushed["nonce"][0]


async def test_auth_use_par_true_without_an_endpoint_is_explained(
    env: Vault, provider: FakeProvider
) -> None:
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID, auth_use_par="true")
    with use_context(fake_context(context().client, settings, env)):
        answer = await auth_route(login_url(BACKEND, "/"))
    assert answer.status_code == 503
    assert "The sign-in provider does not offer pushed authorization requests" in answer.text
    assert "set-cookie" not in answer.headers
    assert await env.store.count() == 0


async def test_a_response_naming_another_issuer_is_refused_before_any_token_request(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}&iss=https://evil.example/")
    assert state.error_title == "The answer came from another provider"
    assert provider.token_requests == []
    assert not state.signed_in


async def test_iss_is_required_when_the_provider_promises_it(
    env: Vault, provider: FakeProvider
) -> None:
    provider.metadata["authorization_response_iss_parameter_supported"] = True
    state = new_tab()
    url = await login(state, provider)
    await callback(state, f"code=abc&state={state_of(url)}")
    assert state.error_title == "The answer came from another provider"
    assert provider.token_requests == []
    again = new_tab(token="tab-2")
    url = await login(again, provider)
    await callback(again, f"code=abc&state={state_of(url)}&iss={ISSUER}")
    assert again.error_title == ""
    await bind(again)
    assert again.signed_in


async def test_step_up_asks_for_max_age_and_checks_auth_time(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    url = await login(state, provider, step_up=True)
    assert query_of(url)["max_age"] == ["300"]
    assert (await peek_login(state_of(url))).login.max_age == 300
    # A provider that ignored max_age: the sign-in behind the token is an hour old.
    provider.id_claims["auth_time"] = int(time.time()) - 3600
    await callback(state, f"code=abc&state={state_of(url)}")
    assert state.error_title == "The sign-in was not recent enough"


async def test_dismiss_on_the_callback_page_goes_home(env: Vault) -> None:
    """Without its error the callback page would show a spinner that never ends."""
    del env
    state = new_tab("/callback")
    state.error_title, state.error_detail = "Sign-in cancelled", "You declined."
    [redirect] = await run(AuthState.dismiss_error, state)
    assert state.error_title == state.error_detail == ""
    assert redirect is not None and "_redirect" in str(redirect)
    elsewhere = new_tab("/ping")
    elsewhere.error_title = "Your session has expired"
    assert await run(AuthState.dismiss_error, elsewhere) == [None]
    assert elsewhere.error_title == ""


async def test_a_failed_sign_in_is_logged_at_warning_without_secrets(
    env: Vault, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    state = new_tab()
    url = await login(state, provider)
    with caplog.at_level(logging.WARNING, logger="pingapp.auth.state"):
        await callback(
            state, f"error=access_denied%0Aforged-line&error_description=nope&state={state_of(url)}"
        )
    [record] = [r for r in caplog.records if r.name == "pingapp.auth.state"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "sign-in failed: The sign-in provider reported an error" in message
    assert "\n" not in message  # the provider's code is quoted
    assert state_of(url) not in message
