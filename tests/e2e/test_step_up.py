"""Step-up (RFC 9470) and a mix-up (RFC 9207) in Chromium against the running app.

Time is not waited out: the embedded provider keeps its sessions in Redis here, and
the test moves the provider session's `auth_time` an hour back (the provider's clock,
as an injected one would), so the next token's sign-in is "an hour old".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import redis
from playwright.sync_api import Browser, Page, expect

from pingapp.oidc.cookies import SESSION_COOKIE
from tests.support.app import RunningApp, start_app
from tests.support.browser import consent_without_following, sign_in_at_provider
from tests.support.redis import start_redis

RECENT = "Hello from a private endpoint! You signed in recently enough to see this."


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_redis(tmp_path_factory.mktemp("step-up-redis"))
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def app(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("step-up"),
        # Only the provider's records go to Redis; the app keeps its own on disk.
        env={
            "IDP_REDIS_URL": redis_url,
            "REFLEX_STATES_WORKDIR": str(tmp_path_factory.mktemp("step-up-states")),
        },
    )
    yield running
    running.stop()


def age_provider_sessions(redis_url: str, seconds: int) -> int:
    """Move every provider session's sign-in `seconds` into the past; how many."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    moved = 0
    for key in client.scan_iter(match="pingapp:idp:sess:*"):
        record = json.loads(str(client.get(key) or "{}"))
        if "auth_time" in record:
            record["auth_time"] -= seconds
            client.set(key, json.dumps(record), keepttl=True)
            moved += 1
    return moved


def test_an_old_sign_in_is_stepped_up_and_then_answers(
    app: RunningApp, browser: Browser, redis_url: str
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "alice")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    page.click("#ping-recent")
    expect(page.locator("#ping-message")).to_have_text(RECENT)

    # An hour later (the provider's clock), the app signs in again from the
    # provider's session: no password asked, and the token's sign-in is old.
    assert age_provider_sessions(redis_url, 3600) >= 1
    context.clear_cookies(name=SESSION_COOKIE)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    page.wait_for_selector("#qsLogoutBtn, #consent-allow")
    if page.locator("#consent-allow").count():
        page.click("#consent-allow")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    page.click("#ping-recent")
    message = page.locator("#ping-message")
    expect(message).to_contain_text("Not authorized (401)")
    expect(message).to_contain_text("within the last 300 seconds")
    # Step-up: the provider asks for the password again, then the call answers.
    page.click("#step-up")
    expect(page.locator("#username")).to_be_visible()
    sign_in_at_provider(page, "alice")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(app.url + "/ping")
    page.click("#ping-recent")
    expect(message).to_have_text(RECENT)
    expect(page.locator("#step-up")).to_have_count(0)
    context.close()


def test_an_answer_naming_another_issuer_is_refused(app: RunningApp, page: Page) -> None:
    """A mix-up: the provider's real answer, with another issuer's `iss`."""
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    page.wait_for_selector("#username")
    page.fill("#username", "bob")
    page.fill("#password", "bob")
    page.click("#signin")
    page.wait_for_selector("#consent-allow")
    location = consent_without_following(page)
    callback = urlsplit(location)
    query = parse_qs(callback.query)
    assert query["iss"], "the embedded provider sends iss (RFC 9207)"
    query["iss"] = ["https://evil.example/"]
    page.goto(urlunsplit(callback._replace(query=urlencode(query, doseq=True))))
    expect(page.locator("#auth-error-title")).to_have_text("The answer came from another provider")
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
