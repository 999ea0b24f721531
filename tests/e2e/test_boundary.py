"""The backend-for-frontend boundary, attacked against the running app (`make run`).

Each test plays one attack of the independent review on the app started as a user
starts it, over real HTTP, a raw websocket or Chromium (docs/security.md 25, 30, 31, 34,
36, 38; items 1-3, 6, 7, 9 and 11 of the boundary issue).
"""

from __future__ import annotations

import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from pingapp.oidc.cookies import LOGIN_COOKIE, SESSION_COOKIE
from pingapp.oidc.session import KEY_FILE
from tests.support.app import RunningApp, start_app, stored_sessions
from tests.support.browser import consent_without_following, log_out, sign_in_at_provider
from tests.support.processes import ROOT
from tests.support.sockets import NAMESPACE, event_socket_url, frames_until

#: Another port of the same host: in production, a sibling subdomain.
FOREIGN = "http://localhost:5999"
#: An origin listed in CORS_ORIGINS: it may call the API, without credentials.
API_CLIENT = "http://localhost:5998"
USERS = "alice:alice,bob:bob,carol:carol,dave:dave"


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("boundary-states")


@pytest.fixture(scope="module")
def app(states_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("boundary"),
        env={
            "REFLEX_STATES_WORKDIR": str(states_dir),
            "CORS_ORIGINS": API_CLIENT,
            "IDP_USERS": USERS,
        },
    )
    yield running
    running.stop()


def sessions_dir(states_dir: Path) -> Path:
    return states_dir.with_name(states_dir.name + "-sessions")


def record_count(states_dir: Path) -> int:
    folder = sessions_dir(states_dir)
    return (
        len([p for p in folder.glob("*") if not p.name.startswith(".")]) if folder.exists() else 0
    )


def signed_in_page(browser: Browser, app: RunningApp, user: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    expect(page).to_have_url(app.url + "/")  # back from the session hop: cookie set
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    return page


# --- 1. CORS and the websocket's Origin (docs/security.md 30) ------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/auth/session?ticket=x",
        "/auth/login",
        "/idp/.well-known/openid-configuration",
        "/idp/authorize?client_id=pingapp&prompt=none",
        "/_reflex/ping",
        "/api/public",
        "/api/private",
    ],
)
def test_a_foreign_origin_gets_no_cors_grant(app: RunningApp, path: str) -> None:
    cookie = {"Cookie": f"{SESSION_COOKIE}=whatever"}
    simple = httpx2.get(app.backend + path, headers={"Origin": FOREIGN, **cookie})
    assert simple.headers.get("access-control-allow-origin") not in {FOREIGN, "*"}
    preflight = httpx2.options(
        app.backend + path,
        headers={
            "Origin": FOREIGN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.headers.get("access-control-allow-origin") not in {FOREIGN, "*"}


@pytest.mark.parametrize("path", ["/auth/session?ticket=x", "/idp/.well-known/jwks.json"])
def test_auth_and_idp_grant_cors_to_nobody(app: RunningApp, path: str) -> None:
    for origin in (app.url, API_CLIENT):
        answer = httpx2.get(app.backend + path, headers={"Origin": origin})
        assert "access-control-allow-origin" not in answer.headers, origin
        assert "access-control-allow-credentials" not in answer.headers, origin


def test_credentialed_cors_only_for_the_apps_own_origin(app: RunningApp) -> None:
    own = httpx2.get(app.backend + "/_reflex/ping", headers={"Origin": app.url})
    assert own.headers["access-control-allow-origin"] == app.url
    assert own.headers["access-control-allow-credentials"] == "true"


def test_the_api_follows_cors_origins_without_credentials(app: RunningApp) -> None:
    answer = httpx2.get(app.backend + "/api/public", headers={"Origin": API_CLIENT})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == API_CLIENT
    assert answer.headers.get("access-control-allow-credentials") != "true"
    preflight = httpx2.options(
        app.backend + "/api/private",
        headers={
            "Origin": API_CLIENT,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == API_CLIENT
    assert preflight.headers.get("access-control-allow-credentials") != "true"
    # The app's own origin is not an API client unless listed: no credentialed grant.
    own = httpx2.get(app.backend + "/api/public", headers={"Origin": app.url})
    assert own.headers.get("access-control-allow-credentials") != "true"


def test_the_event_websocket_refuses_a_foreign_origin(app: RunningApp) -> None:
    url = event_socket_url(app, secrets.token_hex(16))
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin=FOREIGN, open_timeout=10)  # type: ignore[arg-type]
    assert refused.value.response.status_code in {400, 403}
    with connect(url, origin=app.url, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert str(ws.recv(timeout=10)).startswith("0")  # Engine.IO open


# --- 2. A tab's client token is not a session credential (docs/security.md 25) --------------


def test_a_stolen_client_token_cannot_act_without_the_cookie(
    app: RunningApp, browser: Browser
) -> None:
    page = signed_in_page(browser, app, "alice")
    urls: list[str] = []
    sent: list[str] = []

    def watch(ws) -> None:
        urls.append(ws.url)
        ws.on("framesent", lambda frame: sent.append(str(frame)))

    page.on("websocket", watch)
    page.goto(app.url + "/ping")
    page.click("#ping-private")
    expect(page.locator("#ping-message")).to_contain_text("private endpoint")
    frame = next(f for f in sent if "ping_private" in f)
    [token] = parse_qs(urlsplit(urls[-1]).query)["token"]
    page.context.close()  # the tab is gone; its client token is in the attacker's hands

    # Another machine: the stolen token, the right Origin, but no cookie.
    with connect(event_socket_url(app, token), origin=app.url, open_timeout=10) as ws:  # type: ignore[arg-type]
        assert str(ws.recv(timeout=10)).startswith("0")
        ws.send(f"40{NAMESPACE},")  # Socket.IO CONNECT to Reflex's namespace
        frames_until(ws, rf"^40{NAMESPACE}")
        ws.send(frame)
        answer = frames_until(ws, r"Sign in first|private endpoint")
    assert "Sign in first" in answer
    assert "Hello from a private endpoint" not in answer


# --- 3. A login belongs to the browser that started it (docs/security.md 31) ---------------


def test_the_session_hop_of_another_browser_signs_nobody_in(
    app: RunningApp, browser: Browser
) -> None:
    attacker = browser.new_context().new_page()
    attacker.set_default_timeout(20_000)
    hops: list[str] = []

    def keep_hop(route) -> None:
        hops.append(route.request.url)
        route.abort()

    attacker.route("**/auth/session?*", keep_hop)
    attacker.goto(app.url + "/")
    attacker.click("#qsLoginBtn")
    sign_in_at_provider(attacker, "bob")
    deadline = time.monotonic() + 20
    while not hops and time.monotonic() < deadline:
        attacker.wait_for_timeout(100)
    assert hops, "the attacker's browser never reached the session hop"

    victim = browser.new_context().new_page()
    answer = victim.goto(hops[0])
    assert answer is not None and answer.status == 400
    expect(victim.locator("h1")).to_have_text("This sign-in belongs to another browser")
    assert not [c for c in victim.context.cookies() if c.get("name") == SESSION_COOKIE]
    victim.goto(app.url + "/")
    expect(victim.locator("#home-status")).to_contain_text("You are not logged in!")
    victim.context.close()
    attacker.context.close()


def test_the_callback_url_of_another_browser_signs_nobody_in(
    app: RunningApp, browser: Browser
) -> None:
    attacker = browser.new_context().new_page()
    attacker.set_default_timeout(20_000)
    attacker.goto(app.url + "/")
    attacker.click("#qsLoginBtn")
    attacker.wait_for_selector("#username")
    attacker.fill("#username", "carol")
    attacker.fill("#password", "carol")
    attacker.click("#signin")
    attacker.wait_for_selector("#consent-allow")
    # Allow, but do not follow the redirect back: keep the callback URL.
    callback = consent_without_following(attacker)
    assert "/callback?" in callback and "code=" in callback

    victim = browser.new_context().new_page()
    victim.set_default_timeout(20_000)
    victim.goto(callback)
    expect(victim.locator("#auth-error-title")).to_have_text("This sign-in cannot be finished here")
    victim.goto(app.url + "/")
    expect(victim.locator("#home-status")).to_contain_text("You are not logged in!")
    assert not [c for c in victim.context.cookies() if c.get("name") == SESSION_COOKIE]
    victim.context.close()
    attacker.context.close()


def test_the_login_cookie_is_httponly_and_short_lived(app: RunningApp, browser: Browser) -> None:
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    page.wait_for_selector("#username")
    [cookie] = [c for c in page.context.cookies() if c.get("name") == LOGIN_COOKIE]
    assert cookie.get("httpOnly")
    assert cookie.get("sameSite") == "Lax"
    assert 0 < cookie.get("expires", 0) - time.time() <= 600
    assert page.evaluate("document.cookie") == ""
    page.context.close()


# --- 6. Secrets at rest (docs/security.md 34) -------------------------------------------------


def test_state_and_session_files_are_owner_only_and_hold_no_token(
    app: RunningApp, browser: Browser, states_dir: Path
) -> None:
    page = signed_in_page(browser, app, "dave")
    [cookie] = [c.get("value") for c in page.context.cookies() if c.get("name") == SESSION_COOKIE]
    page.goto(app.url + "/profile")
    expect(page.locator("#profile-name")).to_be_visible()
    deadline = time.monotonic() + 15
    while not list(states_dir.glob("*.pkl")) and time.monotonic() < deadline:
        time.sleep(0.2)  # Reflex writes page states shortly after an event
    sessions = [s for s in stored_sessions(states_dir) if s.claims.get("sub") == "dave"]
    assert sessions, "no session stored for dave"
    folders = [states_dir, sessions_dir(states_dir), (ROOT / KEY_FILE).parent]
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [p for folder in folders[1:] for p in folder.iterdir() if p.is_file()]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    everything = b"".join(p.read_bytes() for p in [*files, *states_dir.glob("*.pkl")])
    for secret in (
        cookie,
        sessions[0].access_token,
        sessions[0].refresh_token,
        sessions[0].id_token,
    ):
        assert secret and secret.encode() not in everything
    page.context.close()


# --- 7. No JWT in a URL or frame the browser sees, logout included (docs/security.md 19, 24) -


def test_logout_puts_no_id_token_in_any_url(app: RunningApp, browser: Browser) -> None:
    page = signed_in_page(browser, app, "alice")
    urls: list[str] = []
    frames: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    with page.expect_request(lambda request: "/idp/logout" in request.url) as sent:
        log_out(page)
    logout = sent.value.url
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    query = parse_qs(urlsplit(logout).query)
    assert "id_token_hint" not in query
    assert query["client_id"] == ["pingapp"]
    assert query["logout_hint"] == ["alice"]
    jwt_like = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.")
    assert not [u for u in urls if jwt_like.search(u)]
    assert not [f for f in frames if jwt_like.search(f)]
    page.context.close()


# --- 9. A stray error callback echoes nothing (docs/security.md 36) -------------------------


def test_an_error_callback_without_a_pending_login_shows_only_a_generic_message(
    app: RunningApp, page: Page
) -> None:
    lure = "Call 0800 123 456 to unlock your account"
    page.goto(
        app.url
        + "/callback?"
        + urlencode({"error": "access_denied", "error_description": lure, "state": "forged"})
    )
    expect(page.locator("#auth-error-title")).to_have_text("This sign-in cannot be finished here")
    assert lure not in page.content()


# --- 11. Unauthenticated requests create no record (docs/security.md 38) ---------------------


def test_a_flood_of_random_handles_creates_no_record(
    app: RunningApp, browser: Browser, states_dir: Path
) -> None:
    before = record_count(states_dir)
    with httpx2.Client(base_url=app.backend) as client:
        for _ in range(40):
            assert (
                client.get(f"/auth/session?ticket={secrets.token_urlsafe(32)}").status_code == 400
            )
    # (The login step does store a pending login: it is rate-limited per client address
    # instead, tests/e2e/test_boundary_round3.py.)
    context = browser.new_context()
    host = urlsplit(app.url).hostname or "localhost"
    for _ in range(3):
        context.clear_cookies()
        context.add_cookies(
            [
                {
                    "name": SESSION_COOKIE,
                    "value": secrets.token_urlsafe(32),
                    "domain": host,
                    "path": "/",
                }
            ]
        )
        page = context.new_page()
        page.goto(app.url + "/ping")
        expect(page.locator("#qsLoginBtn")).to_be_visible()
        page.goto(app.url + "/callback?" + urlencode({"code": "x", "state": secrets.token_hex(8)}))
        expect(page.locator("#auth-error-title")).to_be_visible()
        page.close()
    context.close()
    assert record_count(states_dir) == before
