"""The boundary, round 3, attacked against the running app (`make run`): what the
server keeps is not a credential, a tab's state belongs to its session, and an
anonymous websocket costs nothing (docs/security.md 45, 46, 47).

The attacks are played with raw websockets whose handshake headers are written by
hand, frames captured from a real tab, and plain HTTP; each has a live control (the
same frames with the real cookie do get the private answer), so a test cannot pass
because the attack missed.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from pingapp.oidc.cookies import LOGIN_COOKIE, SESSION_COOKIE
from pingapp.oidc.session import KEY_FILE, Vault
from pingapp.oidc.store import DiskStore, RedisStore
from tests.support.app import PRIVATE_MESSAGE, PUBLIC_MESSAGE, RunningApp, start_app
from tests.support.browser import sign_in_at_provider
from tests.support.net import wait_until
from tests.support.processes import ROOT
from tests.support.redis import Redis, start_redis
from tests.support.sockets import NAMESPACE, TabCapture, frames_until, raw_tab

USERS = "alice:alice,bob:bob"
#: What only alice's session may show.
ALICE = ("alice@example.com", '"sub": "alice"', PRIVATE_MESSAGE)
SIGN_IN_FIRST = "Sign in first"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = start_redis(tmp_path_factory.mktemp("round3-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["disk", "redis"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """The app on its disk store, then on Redis (Reflex's states and our sessions)."""
    env = {"IDP_USERS": USERS}
    if request.param == "redis":
        env["REFLEX_REDIS_URL"] = request.getfixturevalue("redis_server").url
    running = start_app("run", tmp_path_factory.mktemp(f"round3-{request.param}"), env=env)
    running.redis_url = env.get("REFLEX_REDIS_URL", "")  # type: ignore[attr-defined]
    yield running
    running.stop()


def sign_in(browser: Browser, app: RunningApp, user: str) -> tuple[Page, TabCapture, str]:
    """`user` signed in on /ping, with the tab's frames watched; and the session cookie."""
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    capture = TabCapture().watch(page)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    page.click("#ping-private")
    expect(page.locator("#ping-message")).to_contain_text(PRIVATE_MESSAGE)
    [cookie] = [
        c.get("value", "") for c in page.context.cookies() if c.get("name") == SESSION_COOKIE
    ]
    return page, capture, cookie


def vault_of(app: RunningApp, tmp: Path) -> Vault:
    """A vault with the app's own key: it computes exactly the references the app
    stores (more than an attacker who reads the store has)."""
    key = (ROOT / KEY_FILE).read_bytes().strip()
    return Vault(DiskStore(tmp), key, max_age=86_400)


def leaked_store_key(app: RunningApp, vault: Vault, cookie: str) -> str:
    """The session's store key as an attacker reads it: a Redis key name, or (on
    disk, where file names are hashed again) the reference the tab states hold."""
    reference = vault.reference(cookie)
    if app.redis_url:  # type: ignore[attr-defined]
        client = redis.Redis.from_url(app.redis_url)  # type: ignore[attr-defined]
        names = client.scan_iter(match=RedisStore.PREFIX + "session:*")
        leaked = [n.decode().rpartition(":")[2] for n in names]
        assert reference in leaked, "the store key is not where an attacker looks"
    return reference


def answer_to(ws, frame: str) -> str:
    """Send a captured event frame; every frame until its answer (the hydrate's
    snapshot, processed first, is among them)."""
    ws.send(frame)
    return frames_until(ws, rf"{SIGN_IN_FIRST}|{PRIVATE_MESSAGE}")


def utf8(text: str) -> str:
    """`text`'s UTF-8 bytes, one latin-1 character each: sent as raw bytes."""
    return text.encode().decode("latin-1")


def spellings(name: str, value: str) -> list[tuple[str, ...]]:
    """Every way we know to smuggle `name=value` past a cookie parser, each as the
    `Cookie` header(s) of one handshake."""
    host = f"__Host-{name}"
    return [
        (f"{name}={value}",),
        (f'{name}="{value}"',),
        (f'x="\\073 {name}={value}"',),
        (f'x="\\073{name}={value}"; y=1',),
        (utf8(f"\u00a0{name}={value}"),),
        (utf8(f"\u2000{name}={value}"),),
        (utf8(f"x=1;\u3000{name}={value}"),),
        (f"{name}={value}; {name}={value}",),
        (f"{name}={value}; {host}={value}",),
        (f"{host}={value}",),
        (f"{LOGIN_COOKIE}={value}; {name}={value}",),
        # Two headers, and a forged copy of the one the server makes for its handlers.
        ("x=1", f"{name}={value}"),
        (f"pingapp-session-ref={value}; pingapp-login-ref={value}",),
    ]


# --- docs/security.md 45: a store key is not a credential ------------------------------------


def test_a_leaked_store_key_never_acts_as_the_user(
    app: RunningApp, browser: Browser, tmp_path: Path
) -> None:
    page, capture, cookie = sign_in(browser, app, "alice")
    store_key = leaked_store_key(app, vault_of(app, tmp_path), cookie)
    # The CONNECT frame carries the page's hydrate event, which runs `restore`.
    connect, ping = capture.connect_frame(), capture.event_frame("ping_private")

    # Live control: the real cookie, a new tab's token, the same frames: answered.
    with raw_tab(app, "control-tab", (f"{SESSION_COOKIE}={cookie}",), connect) as (ws, _):
        assert PRIVATE_MESSAGE in answer_to(ws, ping)

    for n, spelling in enumerate(spellings(SESSION_COOKIE, store_key)):
        with raw_tab(app, f"attacker-{n}", spelling, connect) as (ws, hello):
            seen = hello + answer_to(ws, ping)
        assert SIGN_IN_FIRST in seen, spelling
        for secret in ALICE:
            assert secret not in seen, (spelling, secret)
    page.context.close()


# --- docs/security.md 46: a tab's state belongs to its session -----------------------------


def test_a_replayed_client_token_finds_a_fresh_state(app: RunningApp, browser: Browser) -> None:
    page, capture, cookie = sign_in(browser, app, "alice")
    page.goto(app.url + "/profile")
    expect(page.locator("#profile-email")).to_have_text("alice@example.com")
    token, connect = capture.token, capture.connect_frame()
    ping = capture.event_frame("ping_private")
    page.context.close()  # the tab is gone; its client token is in the attacker's hands

    _, _, bobs_cookie = sign_in(browser, app, "bob")
    for cookie_header in ((), (f"{SESSION_COOKIE}={bobs_cookie}",)):
        with raw_tab(app, token, cookie_header, connect) as (ws, hello):
            seen = hello + answer_to(ws, ping)
        assert "hydrate" in connect and "40" + NAMESPACE in hello  # the snapshot was asked for
        # With bob's cookie the tab is bob's: his own answer, none of alice's data.
        for secret in (*ALICE, "Alice") if not cookie_header else ALICE[:2]:
            assert secret not in seen, (cookie_header, secret)

    # Live control: the same token with alice's own cookie is alice's tab again.
    with raw_tab(app, token, (f"{SESSION_COOKIE}={cookie}",), connect) as (ws, hello):
        assert "alice@example.com" in hello + answer_to(ws, ping)


# --- docs/security.md 47: the login step is HTTP, and rate-limited per address ----------------


def test_the_login_step_is_rate_limited_per_client_address(app: RunningApp) -> None:
    """A flood from one address gets 429 with Retry-After; another address is not
    affected (the app sees the socket's peer: 127.0.0.x are different clients)."""
    if app.redis_url:  # type: ignore[attr-defined]
        pytest.skip("run once, on the disk set-up: the limit is per backend process")
    flooder = httpx2.HTTPTransport(local_address="127.0.0.3")
    with httpx2.Client(transport=flooder, base_url=app.backend) as client:
        codes = [client.get("/auth/login?return_to=/ping").status_code for _ in range(40)]
        refused = client.get("/auth/login")
    assert codes[:30] == [303] * 30
    assert set(codes[30:]) == {429}
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Too many sign-ins" in refused.text
    other = httpx2.HTTPTransport(local_address="127.0.0.4")
    with httpx2.Client(transport=other, base_url=app.backend) as client:
        assert client.get("/auth/login").status_code == 303


def test_a_forged_forwarded_for_does_not_escape_the_limit(app: RunningApp) -> None:
    """docs/security.md 51: no proxy is trusted by default, so X-Forwarded-For is not read."""
    if app.redis_url:  # type: ignore[attr-defined]
        pytest.skip("run once, on the disk set-up: the limit is per backend process")
    spoofer = httpx2.HTTPTransport(local_address="127.0.0.5")
    with httpx2.Client(transport=spoofer, base_url=app.backend) as client:
        codes = [
            client.get("/auth/login", headers={"X-Forwarded-For": f"10.9.{n // 250}.{n % 250}"})
            for n in range(31)
        ]
    assert [c.status_code for c in codes] == [303] * 30 + [429]


def test_the_login_step_sets_a_login_cookie_and_goes_to_the_provider(app: RunningApp) -> None:
    answer = httpx2.get(app.backend + "/auth/login?return_to=/profile&prompt=consent")
    assert answer.status_code == 303
    # The embedded provider advertises PAR: the rest went there, not into the URL.
    assert "/idp/authorize?client_id=pingapp&request_uri=" in answer.headers["location"]
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{LOGIN_COOKIE}=") and "HttpOnly" in cookie
    assert answer.headers["cache-control"] == "no-store"


# --- docs/security.md 47: anonymous websocket events store nothing and call nobody ----------


class Recorder(http.server.ThreadingHTTPServer):
    """An "OpenID Provider" that only counts what reaches it (and answers 503)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.paths.append(self.path)
                self.send_response(503)
                self.end_headers()

            do_POST = do_GET

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, Recorder]]:
    recorder = Recorder()
    tmp = tmp_path_factory.mktemp("round3-recorded")
    states = tmp / "states"
    running = start_app(
        "run",
        tmp,
        env={"AUTH_ISSUER": recorder.url + "/", "REFLEX_STATES_WORKDIR": str(states)},
    )
    running.states = states  # type: ignore[attr-defined]
    # At start the app checks the provider once (pingapp.startup: its discovery
    # document); what the tests count is what events cause after that.
    wait_until(
        lambda: DISCOVERY in recorder.paths,
        what="the start-up check of the provider",
        timeout=120,
        log=running.log,
    )
    assert recorder.paths == [DISCOVERY]
    recorder.paths.clear()
    yield running, recorder
    running.stop()
    recorder.shutdown()


def session_records(states: Path) -> int:
    folder = states.with_name(states.name + "-sessions")
    return (
        len([p for p in folder.glob("*") if not p.name.startswith(".")]) if folder.exists() else 0
    )


def test_anonymous_login_and_logout_events_store_nothing_and_call_nobody(
    recorded: tuple[RunningApp, Recorder], browser: Browser
) -> None:
    app, recorder = recorded
    page = browser.new_context().new_page()
    capture = TabCapture().watch(page)
    page.goto(app.url + "/ping")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    connect, ping = capture.connect_frame(), capture.event_frame("ping_public")
    handler = "pingapp___ping___state____ping_state.ping_public"
    assert handler in ping
    logout = ping.replace(handler, "pingapp___auth___state____auth_state.logout")
    login = ping.replace(handler, "pingapp___auth___state____auth_state.login")  # earlier versions'
    page.context.close()
    before = session_records(app.states)  # type: ignore[attr-defined]

    sent = 0
    for n in range(4):
        with raw_tab(app, f"anonymous-{n}", (), connect) as (ws, _):
            for _ in range(1_250):
                ws.send(login)
                ws.send(logout)
                sent += 2
            ws.send(ping)  # answered once every event before it was handled
            assert PUBLIC_MESSAGE in frames_until(ws, PUBLIC_MESSAGE, timeout=300)
    assert sent == 10_000
    assert recorder.paths == []
    assert session_records(app.states) == before  # type: ignore[attr-defined]

    # Live control: the HTTP login step does reach this provider (and fails clearly).
    answer = httpx2.get(app.backend + "/auth/login")
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert recorder.paths, "the recorder is not the app's provider"
    assert session_records(app.states) == before  # type: ignore[attr-defined]


# --- docs/security.md 47, 50: stores expire everything; bodies are bounded ---------------------


def test_every_redis_record_has_a_time_to_live(app: RunningApp, browser: Browser) -> None:
    if not app.redis_url:  # type: ignore[attr-defined]
        pytest.skip("the Redis set-up's records")
    page, _, _ = sign_in(browser, app, "alice")
    client = redis.Redis.from_url(app.redis_url)  # type: ignore[attr-defined]
    names = list(client.scan_iter(count=500))
    assert any(n.startswith(RedisStore.PREFIX.encode()) for n in names), names
    forever = [n for n in names if client.ttl(n) == -1]
    assert forever == []
    page.context.close()


def test_a_large_logout_body_is_refused_before_it_is_read(app: RunningApp) -> None:
    url = app.backend + "/auth/backchannel-logout"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    big = httpx2.post(url, content=b"logout_token=" + b"a" * (1 << 20), headers=form)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"logout_token="
        for _ in range(64):
            yield b"a" * 16_384

    streamed = httpx2.post(url, content=chunks(), headers=form)
    assert streamed.status_code == 413
    small = httpx2.post(url, data={"logout_token": "x.y.z"})
    assert small.status_code == 400  # read, and refused for what it is
