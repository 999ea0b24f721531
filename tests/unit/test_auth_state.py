"""AuthState: every path of the login callback, refresh and logout.

The provider here is an `httpx.MockTransport` answering discovery, JWKS, token,
userinfo and revocation with tokens this test signs; sessions, pending logins and
tickets live in a real `Vault` on a temporary `DiskStore`. The two HTTP hops
(`/auth/login`, `/auth/session`) are simulated the way `pingapp.auth.routes` does
them, and a tab's Cookie header carries our cookies' digests, as the app's ASGI
layer (`digest_our_cookies`) hands them to Reflex. Browser tests cover the same
flow against the embedded provider.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from reflex.istate.data import HeaderData, ReflexURL, RouterData, SessionData
from starlette.requests import cookie_parser

from pingapp.auth import login as request
from pingapp.auth import session
from pingapp.auth.session import LOGIN_COOKIE, SESSION_COOKIE, Vault, digest, new_secret
from pingapp.auth.state import AuthState
from pingapp.auth.store import DiskStore
from pingapp.context import build_context, context, use_context
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
                    **self.metadata,
                },
            )
        if path == "/par":
            self.pushed.append(parse_qs(request.content.decode()))
            return httpx.Response(
                201, json={"request_uri": "urn:ietf:params:oauth:request_uri:r1", "expires_in": 60}
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


async def token_of(state: AuthState, rejected: str | None = None) -> str | None:
    """The access token `_access_token` gives (its credential's token), or None."""
    credential = await state._access_token(rejected)
    return credential.token if credential else None


@pytest.fixture
async def env(provider: FakeProvider, tmp_path: Path) -> AsyncIterator[Vault]:
    """Settings, the shared client (to the fake provider) and a vault on disk."""
    settings = Settings(auth_issuer=ISSUER, auth_client_id=CLIENT_ID)
    vault = Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)
    async with httpx.AsyncClient(transport=httpx.MockTransport(provider.handler)) as client:
        with use_context(fake_context(client, settings, vault)):
            yield vault


def fake_context(client: httpx.AsyncClient, settings: Settings, vault: Vault):
    """The application context of a backend at BACKEND serving FRONTEND, whose
    other tabs are not open (the notifier does nothing)."""
    return build_context(client, settings=settings, vault=vault, backend=BACKEND, frontend=FRONTEND)


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
    """Point the tab at `path`; the Cookie header and client token stay as they
    were unless given (a connection's cookies come with its handshake)."""
    current = state.router
    state.router = RouterData(
        session=SessionData(client_token=current.session.client_token if token is None else token),
        headers=HeaderData(cookie=current.headers.cookie if cookie is None else cookie),
        url=current.url if path is None else ReflexURL(FRONTEND + path),
    )


def with_cookie(header: str, name: str, value: str | None) -> str:
    """`header` with cookie `name` set to `value` (or removed, for None)."""
    cookies = {key: item for key, item in cookie_parser(header).items() if key != name}
    if value is not None:
        cookies[name] = value
    return "; ".join(f"{key}={item}" for key, item in cookies.items())


def cookie_of(state: AuthState, name: str) -> str:
    return cookie_parser(state.router.headers.cookie).get(name, "")


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


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def start_login(state: AuthState, return_to: str = "") -> str:
    """Press Log In; return the one-time handle of the `/auth/login` hop."""
    [hop] = navigations(await run(AuthState.login, state, return_to))
    assert hop.startswith(BACKEND + "/auth/login?tx=")
    [handle] = query_of(hop)["tx"]
    return handle


async def login(state: AuthState, provider: FakeProvider, return_to: str = "") -> str:
    """Start a login and take the `/auth/login` hop as `routes.start_login` does;
    return the authorization URL and arm the provider's nonce.

    The tab's connection then carries the new login cookie (as its digest), next
    to whatever cookies it had."""
    handle = await start_login(state, return_to)
    record = await context().vault.take_login(handle)
    assert record is not None
    binding = new_secret()
    record.browser = digest(binding)
    await context().vault.put_login(record.login.state, record)
    at(state, cookie=with_cookie(state.router.headers.cookie, LOGIN_COOKIE, digest(binding)))
    provider.nonce = record.login.nonce
    return record.authorize_url


async def callback(state: AuthState, query: str, cookie: str | None = None) -> list[Any]:
    at(state, "/callback?" + query, cookie=cookie)
    return await run(AuthState.handle_callback, state)


async def bind(state: AuthState, events: list[Any]) -> session.BindTicket:
    """The `/auth/session` hop as `routes.bind_session` does it, then the page load:
    the login cookie is swapped for the session cookie and the tab restored."""
    [url] = navigations(events)
    assert url.startswith(BACKEND + "/auth/session?ticket=")
    ticket = await context().vault.redeem_ticket(query_of(url)["ticket"][0])
    assert ticket is not None
    assert ticket.browser == cookie_of(state, LOGIN_COOKIE)
    cookie = with_cookie(state.router.headers.cookie, LOGIN_COOKIE, None)
    at(
        state,
        ticket.return_to,
        cookie=with_cookie(cookie, SESSION_COOKIE, digest(ticket.session_id)),
    )
    await run(AuthState.restore, state)
    return ticket


def state_of(url: str) -> str:
    return query_of(url)["state"][0]


# --- the authorization request ---------------------------------------------------------


async def test_login_sends_pkce_state_nonce_audience_and_scope(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab("/ping")
    handle = await start_login(state)
    record = await env.take_login(handle)
    assert record is not None
    assert await env.take_login(handle) is None  # the hop's handle works once
    assert record.browser == ""  # bound to a browser by the /auth/login hop
    url = record.authorize_url
    query = query_of(url)
    assert url.startswith(ISSUER + "authorize?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [FRONTEND + "/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["audience"] == ["urn:pingapp:api"]
    assert "read:messages" in query["scope"][0].split()
    pending = record.login
    assert query["state"] == [pending.state]
    assert query["nonce"] == [pending.nonce]
    # SECURITY 13: the verifier is long, random, and only its hash leaves the server.
    assert len(pending.code_verifier) >= 43
    assert pending.code_verifier not in url
    assert query["code_challenge"][0] != pending.code_verifier
    assert pending.return_to == "/ping"
    # Nothing of the pending login is in the tab's state or what the page gets.
    delta = json.dumps(state.get_delta(), default=str)
    for secret in (pending.code_verifier, pending.state, pending.nonce, handle):
        assert secret not in delta
    assert not hasattr(state, "_pending")


async def test_each_login_gets_fresh_secrets(env: Vault, provider: FakeProvider) -> None:
    first, second = new_tab(), new_tab(token="tab-2")
    a, b = await login(first, provider), await login(second, provider)
    for name in ("state", "nonce", "code_challenge"):
        assert query_of(a)[name] != query_of(b)[name]
    assert cookie_of(first, LOGIN_COOKIE) != cookie_of(second, LOGIN_COOKIE)


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


# --- the callback --------------------------------------------------------------------------


async def test_good_callback_signs_in_and_keeps_tokens_on_the_server(
    env: Vault, provider: FakeProvider
) -> None:
    state = new_tab("/ping")
    url = await login(state, provider, "/profile")
    browser = cookie_of(state, LOGIN_COOKIE)
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
    [hop] = navigations(events)
    assert hop.startswith(BACKEND + "/auth/session?ticket=")
    [ticket_value] = query_of(hop)["ticket"]
    ticket = await env.redeem_ticket(ticket_value)
    assert ticket is not None
    assert ticket.return_to == "/profile"
    assert ticket.browser == browser  # only the browser that logged in gets the cookie
    # The tab keeps the id's digest only; the id itself goes to the cookie.
    assert state._session_hash == digest(ticket.session_id)
    assert await env.redeem_ticket(ticket_value) is None  # one use
    stored = await env.load(state._session_hash)
    assert stored is not None
    assert stored.access_token == "access-1"
    assert stored.refresh_token == "refresh-1"
    assert stored.tabs == ["tab-1"]
    # SECURITY 19: no token in anything the browser gets.
    delta = json.dumps(state.get_delta(), default=str)
    for secret in ("access-1", "refresh-1", stored.id_token, ticket.session_id):
        assert secret
        assert secret not in delta


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
    assert state.signed_in
    await callback(state, query)
    assert len(provider.token_requests) == 1
    assert state.error_title == GENERIC


@pytest.mark.parametrize(
    "connection",
    ["no cookie", "another login cookie", "the digest sent as a cookie", "another browser"],
)
async def test_a_callback_without_this_logins_cookie_is_refused(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """SECURITY 31: the state is tied to the browser that started the login."""
    started, other = new_tab(), new_tab(token="tab-2")
    url = await login(started, provider)
    if connection == "no cookie":
        cookie = ""
    elif connection == "another login cookie":
        cookie = f"{LOGIN_COOKIE}={digest(new_secret())}"
    elif connection == "the digest sent as a cookie":
        # A stolen digest comes back hashed again by the app.
        cookie = f"{LOGIN_COOKIE}={digest(cookie_of(started, LOGIN_COOKIE))}"
    else:
        await login(other, provider)  # a login cookie of its own
        cookie = other.router.headers.cookie
    events = await callback(other, f"code=abc&state={state_of(url)}", cookie=cookie)
    assert provider.token_requests == []
    assert navigations(events) == []
    assert not other.signed_in
    assert other._session_hash == ""
    assert other.error_title == GENERIC
    # The answer is spent: one use, whoever presents it.
    await callback(started, f"code=abc&state={state_of(url)}")
    assert not started.signed_in
    assert provider.token_requests == []


@pytest.mark.parametrize("cookie", ["none", "some login cookie"])
async def test_a_login_that_skipped_the_login_hop_cannot_be_finished(
    env: Vault, provider: FakeProvider, cookie: str
) -> None:
    """Before the `/auth/login` hop the pending login is bound to no browser."""
    state = new_tab()
    handle = await start_login(state)
    header = "" if cookie == "none" else f"{LOGIN_COOKIE}={digest(new_secret())}"
    await callback(state, f"code=abc&state={handle}", cookie=header)
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
    cookie = "" if connection == "no cookie" else f"{LOGIN_COOKIE}={digest(new_secret())}"
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
    events = await callback(state, f"code=abc&state={state_of(url)}")
    assert not state.signed_in
    assert state.error_title == "The sign-in could not be verified"
    assert words in state.error_detail.lower()
    assert state._session_hash == ""
    assert navigations(events) == []
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
    state = new_tab()
    events = await run(AuthState.login, state, "")
    assert navigations(events) == []
    assert state.error_title == "The sign-in provider cannot be reached"
    assert "AUTH_ISSUER" in state.error_detail
    assert not state.busy
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
    """A tab signed in the whole way: login, callback, ticket, page load."""
    state = new_tab(token=token)
    url = await login(state, provider)
    await bind(state, await callback(state, f"code=abc&state={state_of(url)}"))
    assert state.signed_in
    assert cookie_of(state, SESSION_COOKIE) == state._session_hash
    assert cookie_of(state, LOGIN_COOKIE) == ""
    return state


async def test_a_new_login_gets_a_new_session_id_and_ends_the_old_one(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    first = state._session_hash
    url = await login(state, provider)  # the old session cookie comes along
    assert cookie_of(state, SESSION_COOKIE) == first
    ticket = await bind(state, await callback(state, f"code=b&state={state_of(url)}"))
    assert state._session_hash != first
    assert state._session_hash == digest(ticket.session_id)
    assert await env.load(first) is None
    assert await env.load(state._session_hash) is not None


async def test_another_tab_with_the_cookie_is_signed_in(env: Vault, provider: FakeProvider) -> None:
    first = await signed_in(provider)
    cookie = f"other=1; {SESSION_COOKIE}={first._session_hash}"
    second = new_tab("/profile", cookie=cookie, token="tab-2")
    await run(AuthState.restore, second)
    assert second.signed_in
    assert second.user_email == "alice@example.test"
    assert second._session_hash == first._session_hash
    assert await token_of(second) == "access-1"
    stored = await env.load(first._session_hash)
    assert stored is not None
    assert stored.tabs == ["tab-1", "tab-2"]


@pytest.mark.parametrize("value", ["made-up", digest("made-up")])
async def test_a_forged_session_id_signs_nobody_in(env: Vault, value: str) -> None:
    state = new_tab(cookie=f"{SESSION_COOKIE}={value}")
    await run(AuthState.restore, state)
    assert not state.signed_in
    assert state._session_hash == ""
    assert await token_of(state) is None
    assert await env.store.count() == 0  # a look-up creates nothing


@pytest.mark.parametrize("connection", ["no cookie", "another session's cookie"])
async def test_a_stolen_client_token_gets_no_access_token(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    """SECURITY 25: the tab's `_session_hash` alone (all a stolen Reflex client
    token brings) is not enough: the connection must carry the session's cookie."""
    victim = await signed_in(provider)
    victim_hash = victim._session_hash
    if connection == "no cookie":
        cookie = "other=1"
    else:
        attacker = await signed_in(provider, token="tab-2")
        cookie = f"{SESSION_COOKIE}={attacker._session_hash}"
    # The attacker's connection, driving the victim's tab state.
    at(victim, "/ping", cookie=cookie)
    assert victim._session_hash == victim_hash
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
    owner = new_tab(cookie=f"{SESSION_COOKIE}={victim_hash}", token="tab-1")
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
    stored = await env.load(old_hash)
    assert stored is not None
    events = await run(AuthState.logout, state)
    assert provider.revoked == ["refresh-1"]  # SECURITY 24
    assert not state.signed_in
    assert state._session_hash == ""
    assert await env.load(old_hash) is None  # SECURITY 20: the old id is dead
    [url] = navigations(events)
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
    copy = new_tab(cookie=f"{SESSION_COOKIE}={old_hash}", token="tab-9")
    await run(AuthState.restore, copy)
    assert not copy.signed_in


@pytest.mark.parametrize("connection", ["no cookie", "another session's cookie"])
async def test_logout_without_the_sessions_cookie_ends_nothing(
    env: Vault, provider: FakeProvider, connection: str
) -> None:
    victim = await signed_in(provider)
    victim_hash = victim._session_hash
    if connection == "no cookie":
        cookie = ""
    else:
        attacker = await signed_in(provider, token="tab-2")
        cookie = f"{SESSION_COOKIE}={attacker._session_hash}"
    at(victim, cookie=cookie)
    events = await run(AuthState.logout, victim)
    assert provider.revoked == []
    assert await env.load(victim_hash) is not None
    for url in navigations(events):
        assert "logout_hint" not in query_of(url)


async def test_logout_with_the_provider_down_stays_in_the_app(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    old_hash = state._session_hash
    provider.down = True  # discovery is cached, the provider no longer answers
    events = await run(AuthState.logout, state)
    assert navigations(events) == []  # not sent to an error page
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
    state = new_tab()
    with use_context(fake_context(context().client, settings, env)):
        events = await run(AuthState.login, state, "")
    assert navigations(events) == []
    assert state.error_title == "The sign-in provider does not offer pushed authorization requests"


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
    events = await callback(again, f"code=abc&state={state_of(url)}&iss={ISSUER}")
    assert again.error_title == ""
    await bind(again, events)
    assert again.signed_in


async def test_step_up_asks_for_max_age_and_checks_auth_time(
    env: Vault, provider: FakeProvider
) -> None:
    state = await signed_in(provider)
    [url] = navigations(await run(AuthState.sign_in_recently, state))
    record = await context().vault.take_login(query_of(url)["tx"][0])
    assert record is not None
    assert query_of(record.authorize_url)["max_age"] == ["300"]
    binding = new_secret()
    record.browser = digest(binding)
    await context().vault.put_login(record.login.state, record)
    at(state, cookie=with_cookie(state.router.headers.cookie, LOGIN_COOKIE, digest(binding)))
    provider.nonce = record.login.nonce
    # A provider that ignored max_age: the sign-in behind the token is an hour old.
    provider.id_claims["auth_time"] = int(time.time()) - 3600
    await callback(state, f"code=abc&state={record.login.state}")
    assert state.error_title == "The sign-in was not recent enough"
