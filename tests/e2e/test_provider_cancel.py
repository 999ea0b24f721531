"""Leaving the embedded provider without signing in, in real Chromium (issue 27).

The app runs as `make run` and as `make prod` start it (in prod, /auth and /idp are
on the page's own origin). From /ping, Log In leads to the provider's
sign-in page; its "Back to pingapp" link (by keyboard) and the browser's Back button
both return to the app, signed out and without an error, and Log In still works
afterwards. A wrong password keeps the name typed and puts the focus on the
password, so typing the right one is all it takes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.app import PUBLIC_MESSAGE, RunningApp, start_app
from tests.support.browser import sign_in_at_provider


@pytest.fixture(scope="module", params=["run", "prod"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    # carol is used once per app, by the test that leaves from the consent page.
    running = start_app(
        request.param,
        tmp_path_factory.mktemp(request.param),
        env={
            "REFLEX_STATES_WORKDIR": str(tmp_path_factory.mktemp("states")),
            "IDP_USERS": "alice:alice,bob:bob,carol:carol",
        },
    )
    yield running
    running.stop()


def ping_url(app: RunningApp) -> re.Pattern[str]:
    return re.compile(re.escape(app.url) + "/ping/?$")


def watch_errors(page: Page) -> list[str]:
    """Uncaught script errors and console errors of `page`, but for failed loads (the
    provider answers a wrong password with 401; its pages name no favicon)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on(
        "console",
        lambda message: (
            errors.append(f"{message.text} at {message.location.get('url')}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    return errors


def to_provider(page: Page, app: RunningApp) -> None:
    """On /ping, press Log In: the provider's sign-in page."""
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    expect(page.locator("#username")).to_be_visible()
    assert "/idp/login?" in page.url


def signed_out_at_home(page: Page, app: RunningApp) -> None:
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#auth-error")).to_have_count(0)


def test_back_to_pingapp_by_keyboard_goes_home_signed_out(app: RunningApp, page: Page) -> None:
    errors = watch_errors(page)
    to_provider(page, app)
    link = page.locator("#back-to-app")
    expect(link).to_have_text("Back to pingapp")
    expect(link).to_have_attribute("href", app.url + "/")
    # The focus starts in the name; the link comes after the form.
    expect(page.locator("#username")).to_be_focused()
    stops = []
    for _ in range(5):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.id"))
        if stops[-1] == "back-to-app":
            break
    assert stops == ["password", "signin", "back-to-app"], stops
    page.keyboard.press("Enter")
    signed_out_at_home(page, app)
    # Log In still works from here.
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are logged in!")
    assert not errors, errors


def test_back_to_pingapp_from_the_consent_page(app: RunningApp, page: Page) -> None:
    errors = watch_errors(page)
    to_provider(page, app)
    page.fill("#username", "carol")
    page.fill("#password", "carol")
    page.click("#signin")
    expect(page.locator("#consent-allow")).to_be_visible()
    page.click("#back-to-app")
    signed_out_at_home(page, app)
    assert not errors, errors


def test_browser_back_from_the_provider_returns_to_a_working_page(
    app: RunningApp, page: Page
) -> None:
    errors = watch_errors(page)
    to_provider(page, app)
    page.go_back()
    expect(page).to_have_url(ping_url(app))
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#auth-error")).to_have_count(0)
    # The page is alive: its events reach the server.
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    # And Log In signs in, back on /ping.
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "bob")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(ping_url(app))
    assert not errors, errors


def test_a_wrong_password_keeps_the_name_then_the_right_one_signs_in(
    app: RunningApp, page: Page
) -> None:
    errors = watch_errors(page)
    to_provider(page, app)
    page.fill("#username", "alice")
    page.fill("#password", "wrong")
    page.click("#signin")
    expect(page.locator("#signin-error")).to_have_text("Wrong user name or password.")
    expect(page.locator("#username")).to_have_value("alice")
    expect(page.locator("#password")).to_have_value("")
    expect(page.locator("#password")).to_be_focused()
    expect(page.locator("#password")).to_have_attribute("aria-describedby", "signin-error")
    page.keyboard.type("alice")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/idp/login" not in url)
    if page.locator("#consent-allow").count():
        page.click("#consent-allow")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(ping_url(app))
    assert not errors, errors
