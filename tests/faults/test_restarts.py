"""Redis and the backend restarting under a signed-in user, with the app (`make run`)
on Redis (REFLEX_REDIS_URL): page states, server-side sessions and the embedded
provider's records all live in that Redis, none in the backend process.

- Redis restarted *with its data* (append-only file, as a production Redis keeps
  it): the session comes back and the user is still signed in.
- Redis restarted *without its data* (the file removed, or a Redis that keeps
  none): the cookie names a session that no longer exists, so the app shows the
  user signed out and asks them to log in again; a new sign-in works at once.
- Either way, no HTTP request answers 500 while Redis is away and back: the API,
  the provider's discovery and the health check never need Redis; the cookie hop
  (`/auth/session`), which does, answers 503 with Retry-After and a page that says
  to try again.
- The backend restarted: the open page reconnects by itself and the user is still
  signed in, because nothing of the session was in the process.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2
import pytest
from playwright.sync_api import Page, expect

from tests.support.app import PRIVATE_MESSAGE, PUBLIC_MESSAGE, RunningApp, restart_app, start_app
from tests.support.browser import sign_in
from tests.support.faults import APP_ENV
from tests.support.idp import logout_token
from tests.support.processes import ROOT
from tests.support.redis import Redis


@dataclass
class Load:
    """HTTP requests in a loop from a few threads: the API, the cookie hop (which
    reads Redis), the provider's discovery and the backend's health check."""

    backend: str
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        with httpx2.Client(base_url=self.backend, timeout=10) as client:
            while not self.stop.is_set():
                for path in (
                    "/api/public",
                    f"/auth/session?ticket={secrets.token_urlsafe(32)}",
                    "/idp/.well-known/openid-configuration",
                    "/_reflex/ping",
                ):
                    try:
                        answer = client.get(path)
                    except httpx2.TransportError as error:
                        self.failures.append(f"{path}: {error!r}")
                        continue
                    self.statuses[answer.status_code] += 1
                    if (
                        answer.status_code == 503
                        and path.startswith("/auth/session")
                        and answer.headers.get("Retry-After")
                        and "Try again" in answer.text
                    ):
                        continue  # the store is away: an honest "come back later"
                    if answer.status_code >= 500:
                        name = path.partition("?")[0]
                        self.failures.append(f"{name}: {answer.status_code} {answer.text[:80]}")

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self._run) for _ in range(4)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    server = Redis(tmp_path_factory.mktemp("redis"), append_only=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_env(redis: Redis) -> dict[str, str]:
    return {**APP_ENV, "REFLEX_REDIS_URL": redis.url}


@pytest.fixture(scope="module")
def app(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app("run", tmp_path_factory.mktemp("restarts"), env=app_env)
    yield running
    running.stop()


def pings(page: Page) -> None:
    """A public then a private ping, each a new answer, without a reload."""
    message = page.locator("#ping-message")
    page.click("#ping-public")
    expect(message).to_contain_text(PUBLIC_MESSAGE)
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)


def restart_redis_under_load(app: RunningApp, redis: Redis, *, keep_data: bool) -> Load:
    with Load(app.backend) as load:
        time.sleep(0.5)
        redis.stop()
        time.sleep(0.5)  # requests keep coming while Redis is away
        if not keep_data:
            for path in redis.data.rglob("*"):
                if path.is_file():
                    path.unlink()
        redis.start()
        time.sleep(1.0)
    return load


def test_redis_restart_with_its_data_keeps_the_user_signed_in(
    app: RunningApp, redis: Redis, page: Page
) -> None:
    sign_in(page, app.url)
    pings(page)
    load = restart_redis_under_load(app, redis, keep_data=True)
    assert sum(load.statuses.values()) > 20
    assert not load.failures, sorted(set(load.failures))[:5]
    assert load.statuses[503], "no request came while Redis was away"
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    pings(page)


def test_redis_restart_without_its_data_asks_the_user_to_sign_in_again(
    app: RunningApp, redis: Redis, page: Page
) -> None:
    sign_in(page, app.url)
    pings(page)
    load = restart_redis_under_load(app, redis, keep_data=False)
    assert sum(load.statuses.values()) > 20
    assert not load.failures, sorted(set(load.failures))[:5]
    assert load.statuses[503], "no request came while Redis was away"
    page.reload()
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    sign_in(page, app.url)
    pings(page)


def test_backend_restart_reconnects_and_the_user_is_still_signed_in(
    app: RunningApp, app_env: dict[str, str], page: Page
) -> None:
    sign_in(page, app.url)
    pings(page)
    away = restart_app(app, app_env)
    print(f"\nmake run restarted in {away:.1f} s")
    # The same page, not reloaded: its websocket comes back and events flow again.
    # (It retries with a back-off, and the dev server may make it reload itself:
    # the page's own actions' timeout, not expect's 5 s.)
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    pings(page)
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    pings(page)


def test_backchannel_logout_while_redis_is_away_is_503_then_ends_the_session(
    app: RunningApp, redis: Redis, page: Page
) -> None:
    """docs/security.md 48: the store failing is our fault, not the token's: 503 with
    Retry-After, nothing ended and the `jti` not recorded, so the provider's retry
    of the same token ends the session (and a third delivery is refused)."""
    sign_in(page, app.url)
    page.goto(app.url + "/ping")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    issuer = httpx2.get(app.backend + "/idp/.well-known/openid-configuration").json()["issuer"]
    token = logout_token(issuer, ROOT / ".idp", sub="alice")
    url = app.backend + "/auth/backchannel-logout"

    redis.stop()
    try:
        away = httpx2.post(url, data={"logout_token": token}, timeout=30)
    finally:
        redis.start()
    assert away.status_code == 503, away.text
    assert int(away.headers["retry-after"]) > 0
    assert away.headers["cache-control"] == "no-store"
    assert away.json()["error"] == "temporarily_unavailable"
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()  # nothing ended

    again = httpx2.post(url, data={"logout_token": token}, timeout=30)
    assert again.status_code == 200, again.text
    expect(page.locator("#qsLoginBtn")).to_be_visible()  # the open tab, signed out live
    third = httpx2.post(url, data={"logout_token": token}, timeout=30)
    assert third.status_code == 400
    assert "already used" in third.json()["error_description"]
