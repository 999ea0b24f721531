"""The profile's sessions list against the running app (`make run`; docs/sessions.md).

Two browsers (two Playwright contexts) signed in as one user: the first lists both
sessions and ends the other; the other's open tab shows Log In without a reload, and
its refresh token no longer works at the provider (checked with a DPoP-proved
refresh request, whose live control is the first session's token, which still
works). Run on the disk store, then on Redis with a second backend process beside
the first, where the ended session's other tab sits (a raw websocket replaying
the tab's own frames: the page's bundle talks to the first backend only).

A forged row handle ends nothing: raw websocket frames, captured from a real tab
and edited, name rows by anything but this tab's own index, or come from a tab of
another session; the same frames with a real index do end a session (the control).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx2
import pytest
import redis
from cryptography.fernet import Fernet, InvalidToken
from playwright.sync_api import Browser, Page, expect

from pingapp.dpop import DPoPKey, make_proof
from pingapp.oidc.cookies import SESSION_COOKIE
from pingapp.oidc.session import KEY_FILE, ServerSession, Vault
from pingapp.oidc.store import DiskStore, RedisStore
from tests.support.app import RunningApp, start_app, stored_sessions
from tests.support.browser import sign_in_at_provider
from tests.support.net import free_port, wait_until
from tests.support.processes import ROOT, Server
from tests.support.redis import Redis, start_redis
from tests.support.sockets import TabCapture, frames_until, raw_tab

USERS = "alice:alice,bob:bob,carol:carol,dave:dave"
HANDLER = "pingapp___sessions____sessions_state"


@dataclasses.dataclass
class Cluster:
    app: RunningApp
    states: Path
    redis_url: str = ""
    #: The first app seen through a second backend on the same Redis (or None).
    second: RunningApp | None = None


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = start_redis(tmp_path_factory.mktemp("sessions-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["disk", "redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp(f"sessions-{request.param}")
    states = tmp / "states"
    env = {"REFLEX_STATES_WORKDIR": str(states), "IDP_USERS": USERS}
    if request.param == "redis":
        env["REFLEX_REDIS_URL"] = request.getfixturevalue("redis_server").url
    app = start_app("run", tmp, env=env)
    second: Server | None = None
    try:
        found = Cluster(app, states, env.get("REFLEX_REDIS_URL", ""))
        if found.redis_url:
            # A second backend of the same app on the same Redis and key, compiling
            # nothing (the first one's .web serves the pages).
            port = free_port()
            second = Server(
                "second-backend",
                [
                    str(ROOT / ".venv" / "bin" / "reflex"),
                    "run",
                    "--backend-only",
                    "--backend-port",
                    str(port),
                    "--loglevel",
                    "warning",
                ],
                {
                    **env,
                    "REFLEX_SKIP_COMPILE": "1",
                    # The app's origin (`reflex run` sets it from --frontend-port).
                    "REFLEX_DEPLOY_URL": app.url,
                    "FRONTEND_PORT": app.url.rsplit(":", 1)[1],
                    "BACKEND_PORT": str(port),
                },
                tmp / "second-backend.log",
            ).start()
            second.wait_until(f"http://127.0.0.1:{port}/_reflex/ping", "pong", timeout=240)
            found.second = dataclasses.replace(app, backend=f"http://127.0.0.1:{port}")
        yield found
    finally:
        if second is not None:
            second.stop()
        app.stop()


# --- helpers --------------------------------------------------------------------------------


def sessions(cluster: Cluster, user: str) -> list[ServerSession]:
    """`user`'s live sessions as the store holds them, oldest sign-in first."""
    if not cluster.redis_url:
        found = stored_sessions(cluster.states)
    else:
        fernet = Fernet((ROOT / KEY_FILE).read_bytes().strip())
        client = redis.Redis.from_url(cluster.redis_url)
        found = []
        for name in client.scan_iter(match=RedisStore.PREFIX + "session:*"):
            sealed = cast(bytes | None, client.get(name))
            try:
                data = json.loads(fernet.decrypt(sealed)) if sealed else None
            except InvalidToken:
                continue
            if isinstance(data, dict) and data.get("access_token"):
                found.append(ServerSession(**data))
    mine = [s for s in found if s.claims.get("sub") == user]
    return sorted(mine, key=lambda s: s.created_at)


def signed_in(browser: Browser, app: RunningApp, user: str, path: str = "/ping") -> Page:
    """A new browser (context) signed in as `user`, on `path`; its frames watched."""
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.capture = TabCapture().watch(page)  # type: ignore[attr-defined]
    page.goto(app.url + path)
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    return page


def cookie_of(page: Page) -> str:
    [value] = [
        c.get("value", "") for c in page.context.cookies() if c.get("name") == SESSION_COOKIE
    ]
    return value


def rows(page: Page):
    return page.locator("#sessions-list > li")


def open_list(page: Page, count: int) -> None:
    page.goto(page.url.split("/ping")[0].rstrip("/") + "/profile")
    expect(rows(page)).to_have_count(count)


def refresh_at_provider(app: RunningApp, session: ServerSession) -> httpx2.Response:
    """The refresh request a client holding `session`'s refresh token (and its DPoP
    key: the embedded provider binds a public client's refresh token to it) sends."""
    token_url = httpx2.get(app.backend + "/idp/.well-known/openid-configuration").json()[
        "token_endpoint"
    ]
    headers = {}
    if session.dpop_key:
        headers["DPoP"] = make_proof(DPoPKey.from_json(session.dpop_key), "POST", token_url)
    return httpx2.post(
        token_url,
        data={
            "grant_type": "refresh_token",
            "refresh_token": session.refresh_token,
            "client_id": "pingapp",
        },
        headers=headers,
        timeout=10,
    )


def event(frame: str, handler: str, payload: dict[str, object]) -> str:
    """A captured `load_sessions` frame turned into another of the list's events."""
    prefix, _, body = frame.partition(",")
    kind, message = json.loads(body)
    assert message["name"].endswith(f"{HANDLER}.load_sessions"), frame
    message["name"] = message["name"].replace("load_sessions", handler)
    message["payload"] = payload
    return f"{prefix},{json.dumps([kind, message])}"


# --- the tests ------------------------------------------------------------------------------


def test_the_list_shows_both_browsers_and_ending_one_signs_it_out_everywhere(
    cluster: Cluster, browser: Browser
) -> None:
    app = cluster.app
    first = signed_in(browser, app, "alice")
    other = signed_in(browser, app, "alice")
    older, newer = sessions(cluster, "alice")
    remote = contextlib.ExitStack()
    ws = None
    if cluster.second is not None:
        # The other browser also has a tab on the second backend: its own cookie,
        # its page's frames, a tab token of its own.
        capture = other.capture  # type: ignore[attr-defined]
        ws, hello = remote.enter_context(
            raw_tab(
                cluster.second,
                str(uuid.uuid4()),
                (f"{SESSION_COOKIE}={cookie_of(other)}",),
                capture.connect_frame(),
            )
        )
        assert '"signed_in_rx_state_":true' in hello

    open_list(first, 2)
    this = rows(first).filter(has_text="This browser")
    expect(this).to_have_count(1)
    listed = rows(first).all_inner_texts()
    for text in listed:
        assert re.search(r"HeadlessChrome \d+ on Linux", text), text
        assert "127.0.0.0/24" in text and "127.0.0.1" not in text, text
        assert re.search(r"Signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
    n = next(i for i, text in enumerate(listed) if "This browser" not in text)
    assert newer.refresh_token and older.refresh_token

    started = time.perf_counter()
    first.click(f"#session-end-{n}")
    # The other browser's open tab signs out by itself: no reload.
    expect(other.locator("#qsLoginBtn")).to_be_visible(timeout=10_000)
    live = time.perf_counter() - started
    expect(rows(first)).to_have_count(1)
    expect(first.locator("#sessions-status")).to_contain_text("Signed out: HeadlessChrome")
    expect(first.locator("#qsLogoutBtn")).to_be_visible()
    if ws is not None:
        with remote:
            seen = frames_until(ws, r'"signed_in_rx_state_":false', timeout=10)
        assert '"signed_in_rx_state_":false' in seen, seen
    where = "its tab on the second backend too" if ws else "one backend"
    print(f"\n{where}: the other tab showed Log In {live:.2f} s after the click")

    # Gone from the store, and its refresh token is dead at the provider.
    assert [s.refresh_token for s in sessions(cluster, "alice")] == [older.refresh_token]
    refused = refresh_at_provider(app, newer)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", refused.text
    # Control: the same request with the remaining session's token works.
    assert refresh_at_provider(app, older).status_code == 200
    first.context.close()
    other.context.close()


def test_sign_out_everywhere_else_keeps_only_this_browser(
    cluster: Cluster, browser: Browser
) -> None:
    app = cluster.app
    pages = [signed_in(browser, app, "bob") for _ in range(3)]
    me = pages[0]
    open_list(me, 3)
    me.click("#sessions-end-others")
    for page in pages[1:]:
        expect(page.locator("#qsLoginBtn")).to_be_visible(timeout=10_000)
    expect(rows(me)).to_have_count(1)
    expect(rows(me)).to_contain_text("This browser")
    expect(me.locator("#sessions-end-others")).to_be_disabled()
    assert len(sessions(cluster, "bob")) == 1
    for page in pages:
        page.context.close()


def test_a_forged_or_foreign_row_handle_ends_nothing(cluster: Cluster, browser: Browser) -> None:
    if cluster.second is not None:
        pytest.skip("run once, on the disk set-up: the handler is the same")
    app = cluster.app
    carol = signed_in(browser, app, "carol", "/ping")
    carol_2 = signed_in(browser, app, "carol", "/ping")
    dave = signed_in(browser, app, "dave", "/ping")
    open_list(carol, 2)
    open_list(dave, 1)
    capture: TabCapture = carol.capture  # type: ignore[attr-defined]
    load = capture.event_frame("load_sessions")
    connect = capture.connect_frame()
    dave_capture: TabCapture = dave.capture  # type: ignore[attr-defined]
    carol_cookie, dave_cookie = cookie_of(carol), cookie_of(dave)
    stored = {user: len(sessions(cluster, user)) for user in ("carol", "dave")}
    assert stored == {"carol": 2, "dave": 1}

    forged = [
        # (Reflex converts a payload to the handler's annotation, int: "0" or 0.0
        # would be this tab's own row 0, so none of these spells a listed row.)
        5,
        -1,
        "7",
        1.5,
        True,
        None,
        {"index": 0},
        dave_capture.token,
        # The store keys of carol's other session and of dave's, as a reader of the
        # store sees them.
        store_key(carol_2),
        store_key(dave),
        "dave",
    ]
    # Carol's own tab state (her cookie), its list loaded: anything but an index.
    with raw_tab(app, str(uuid.uuid4()), (f"{SESSION_COOKIE}={carol_cookie}",), connect) as (
        ws,
        _,
    ):
        ws.send(load)
        frames_until(ws, "sessions-list|rows_rx_state_", timeout=10)
        for payload in forged:
            ws.send(event(load, "end_session", {"index": payload}))
        ws.send(load)
        frames_until(ws, "rows_rx_state_", timeout=10)
    # Dave's tab token without his cookie: a fresh, signed-out state, no rows. (With
    # carol's cookie the connection is carol: it may end her own sessions.)
    with raw_tab(app, dave_capture.token, (), connect) as (ws, _):
        for index in (0, 1):
            ws.send(event(load, "end_session", {"index": index}))
            ws.send(event(load, "end_other_sessions", {}))
        frames_until(ws, "will-not-match", timeout=3)
    # Dave's own session ends nothing of carol's with her rows' indexes.
    with raw_tab(app, str(uuid.uuid4()), (f"{SESSION_COOKIE}={dave_cookie}",), connect) as (ws, _):
        ws.send(load)
        frames_until(ws, "rows_rx_state_", timeout=10)
        ws.send(event(load, "end_session", {"index": 1}))
        frames_until(ws, "will-not-match", timeout=3)
    time.sleep(1)
    assert {user: len(sessions(cluster, user)) for user in ("carol", "dave")} == stored
    expect(carol_2.locator("#qsLogoutBtn")).to_be_visible()
    expect(dave.locator("#qsLogoutBtn")).to_be_visible()

    # Live control: the same frame with a real index, from carol's own session, ends
    # her other session (rows are newest first: row 0 is carol_2's).
    with raw_tab(app, str(uuid.uuid4()), (f"{SESSION_COOKIE}={carol_cookie}",), connect) as (
        ws,
        _,
    ):
        ws.send(load)
        frames_until(ws, "rows_rx_state_", timeout=10)
        ws.send(event(load, "end_session", {"index": 0}))
        frames_until(ws, "Signed out", timeout=10)
    expect(carol_2.locator("#qsLoginBtn")).to_be_visible(timeout=10_000)
    wait_until(
        lambda: len(sessions(cluster, "carol")) == 1, what="carol's other session ended", timeout=10
    )
    assert len(sessions(cluster, "dave")) == 1
    for page in (carol, carol_2, dave):
        page.context.close()


def store_key(page: Page) -> str:
    """The store key of the page's session (an HMAC of its cookie under the server's
    key): what an attacker who reads Redis or the session files learns."""
    key = (ROOT / KEY_FILE).read_bytes().strip()
    return Vault(DiskStore(Path("/nonexistent")), key, max_age=1).reference(cookie_of(page))
