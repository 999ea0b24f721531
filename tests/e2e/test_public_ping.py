"""The public ping, end to end: a click in Chromium, the API's answer on screen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.app import RunningApp, start_app

PUBLIC_MESSAGE = "Hello from a public endpoint!"


@pytest.fixture(scope="module", params=["run", "prod"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    # The spinner only for an answer slower than 5 s: the in-process public API always
    # answers sooner, so each ping is exactly one update however busy the machine.
    running = start_app(
        request.param, tmp_path_factory.mktemp(request.param), env={"PING_SPINNER_DELAY": "5"}
    )
    yield running
    running.stop()


def test_public_ping_shows_the_api_message(app: RunningApp, page: Page) -> None:
    page.goto(app.url + "/ping")
    expect(page.locator("#ping-message")).to_have_text("")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    expect(page.locator("#ping-timing")).to_contain_text("HTTP 200")


def test_a_fast_answer_arrives_in_one_update(app: RunningApp, page: Page) -> None:
    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda payload: frames.append(str(payload))),
    )
    page.goto(app.url + "/ping")
    answer = page.locator("#ping-answer")
    for count in ("1", "2"):  # the same message twice: the second is an answer too
        page.click("#ping-public")
        expect(answer).to_have_attribute("data-answer", count)
        expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    assert not [frame for frame in frames if '"running_rx_state_":"public"' in frame]
    assert len([frame for frame in frames if PUBLIC_MESSAGE in frame]) == 2
    expect(answer).to_have_attribute("aria-live", "polite")
    expect(page.locator("#ping-loading")).to_have_count(0)


def test_navbar_reaches_every_page(app: RunningApp, page: Page) -> None:
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    page.click("#nav-ping")
    expect(page).to_have_url(app.url + "/ping")
    expect(page.locator("#ping-public")).to_be_visible()
    # Profile needs a sign-in: a signed-out visitor is sent to the provider.
    page.click("#nav-profile")
    expect(page.locator("#username")).to_be_visible()


def test_api_docs_render_offline_with_authorize(app: RunningApp, page: Page) -> None:
    page.goto(app.backend + "/api/docs")
    expect(page.locator(".swagger-ui .title").first).to_contain_text("pingapp API")
    expect(page.locator(".swagger-ui .authorize").first).to_be_visible()
