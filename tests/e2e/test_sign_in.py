"""Sign-in, session and sign-out in real Chromium, through the embedded provider.

The app runs as `make run` starts it, with its state files in a folder of the
test's own, so the test can read the tokens the server holds and prove that
none of them ever reaches the browser.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, expect

from pingapp.oidc.cookies import SESSION_COOKIE
from tests.support.app import (
    PRIVATE_MESSAGE,
    PUBLIC_MESSAGE,
    RunningApp,
    start_app,
    wait_for_sessions,
)
from tests.support.browser import log_out, sign_in_at_provider


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("states")


@pytest.fixture(scope="module")
def app(states_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("signin"),
        # carol never consents before the test that declines; dave is the newcomer
        # who declines, then tries again.
        env={
            "REFLEX_STATES_WORKDIR": str(states_dir),
            "IDP_USERS": "alice:alice,bob:bob,carol:carol,dave:dave",
        },
    )
    yield running
    running.stop()


def test_sign_in_profile_reload_new_tab_and_sign_out_everywhere(
    app: RunningApp, context: BrowserContext, states_dir: Path
) -> None:
    frames: list[str] = []
    context.on(
        "page",
        lambda p: p.on(
            "websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f)))
        ),
    )
    page = context.new_page()
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")

    started = time.perf_counter()
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    round_trip = time.perf_counter() - started
    print(f"\nlogin round trip (click to signed in, forms filled by the test): {round_trip:.2f} s")
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are logged in!")
    # SECURITY 22: code and state are not left in the address bar or history.
    assert "code=" not in page.url

    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text("Alice")
    expect(page.locator("#profile-email")).to_have_text("alice@example.com")
    expect(page.locator("#profile-claims")).to_contain_text('"sub"')

    # SECURITY 19: no token anywhere the browser can see.
    [stored] = wait_for_sessions(states_dir, 1)
    secrets = [stored.access_token, stored.refresh_token, stored.id_token]
    assert all(secrets)
    cookies = context.cookies()
    session_cookie = next(c for c in cookies if c.get("name") == SESSION_COOKIE)
    assert session_cookie.get("httpOnly")
    assert session_cookie.get("sameSite") == "Lax"
    visible = "\n".join(
        [
            page.content(),
            page.evaluate("JSON.stringify(Object.entries(localStorage))"),
            page.evaluate("JSON.stringify(Object.entries(sessionStorage))"),
            page.evaluate("document.cookie"),
            repr(cookies),
            *frames,
        ]
    )
    assert frames, "no websocket frame was captured"
    for secret in secrets:
        assert secret not in visible
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+", visible), "a JWT reached the browser"

    # A reload and a second tab of the same browser are still signed in.
    page.reload()
    expect(page.locator("#profile-name")).to_have_text("Alice")
    second = context.new_page()
    second.goto(app.url + "/profile")
    expect(second.locator("#profile-name")).to_have_text("Alice")

    # Logout in one tab signs out every tab.
    log_out(page)
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(second.locator("#qsLoginBtn")).to_be_visible()
    second.goto(app.url + "/")
    expect(second.locator("#home-status")).to_contain_text("You are not logged in!")
    wait_for_sessions(states_dir, 0)

    # SECURITY 20: a copied old session id no longer works.
    thief = context.browser.new_context() if context.browser else None
    assert thief is not None
    thief.add_cookies([{**session_cookie, "sameSite": "Lax"}])
    stolen = thief.new_page()
    stolen.goto(app.url + "/profile")
    expect(stolen).to_have_url(re.compile(r"/idp/"))  # sent to sign in, not let in
    thief.close()


def test_signed_out_profile_visit_signs_in_and_returns_to_profile(
    app: RunningApp, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(app.url + "/profile")
    sign_in_at_provider(page, "bob")
    expect(page).to_have_url(app.url + "/profile")
    expect(page.locator("#profile-name")).to_have_text("Bob")


def test_declined_consent_is_explained(app: RunningApp, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "carol", allow=False)
    expect(page.locator("#auth-error-title")).to_have_text("Sign-in was cancelled")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    assert "error=" not in page.url


def test_a_forged_callback_is_refused_without_a_token_request(
    app: RunningApp, context: BrowserContext
) -> None:
    page = context.new_page()
    page.goto(app.url + "/callback?code=forged&state=forged")
    expect(page.locator("#auth-error-title")).to_have_text("This sign-in cannot be finished here")
    expect(page).to_have_url(app.url + "/callback")
    referrer = page.locator('meta[name="referrer"]')
    expect(referrer).to_have_attribute("content", "no-referrer")


def test_log_in_again_from_the_error_signs_in_on_a_normal_page(
    app: RunningApp, context: BrowserContext
) -> None:
    """Deny, then Log In from the error: signed in on the home page (never back on
    /callback), and the old error is gone, also after signing out."""
    page = context.new_page()
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "dave", allow=False)
    expect(page.locator("#auth-error-title")).to_have_text("Sign-in was cancelled")
    expect(page).to_have_url(app.url + "/callback")
    headings = page.locator("main h1, main #auth-error-title")
    expect(headings.first).to_have_text("Sign-in did not finish")

    page.click("#auth-error-login")
    sign_in_at_provider(page, "dave")
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are logged in!")
    try:
        expect(page.locator("#auth-error")).to_have_count(0)
    except AssertionError as failed:
        shown = page.locator("#auth-error").all_inner_texts()
        raise AssertionError(f"an error is shown after signing in: {shown}") from failed

    log_out(page)
    page.wait_for_url(app.url + "/")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    expect(page.locator("#auth-error")).to_have_count(0)


def test_dismiss_on_the_callback_goes_home(app: RunningApp, context: BrowserContext) -> None:
    page = context.new_page()
    page.goto(app.url + "/callback?code=forged&state=forged")
    expect(page.locator("#auth-error-title")).to_have_text("This sign-in cannot be finished here")
    page.get_by_role("button", name="Dismiss").click()
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    expect(page.locator("#auth-error")).to_have_count(0)
    expect(page.locator("#callback-pending")).to_have_count(0)


def test_a_bare_callback_opened_while_signed_in_says_so(
    app: RunningApp, context: BrowserContext
) -> None:
    """Nothing to finish at /callback without a code: no error, no endless spinner."""
    page = context.new_page()
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    other = context.new_page()
    other.goto(app.url + "/callback")
    expect(other.locator("#callback-done")).to_be_visible()
    expect(other.locator("#auth-error")).to_have_count(0)
    expect(other.locator("#callback-pending")).to_have_count(0)
    other.click("#callback-done")
    expect(other).to_have_url(app.url + "/")
    expect(other.locator("#qsLogoutBtn")).to_be_visible()
    log_out(page)


def test_the_other_loopback_name_leads_to_a_working_app(
    app: RunningApp, context: BrowserContext
) -> None:
    """`make run` on localhost, opened at 127.0.0.1: the dev server sends the browser
    to the app's origin, where the websocket, the sign-in and the pings work."""
    port = app.url.rsplit(":", 1)[1]
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/ping?from=address-bar")
    expect(page).to_have_url(app.url + "/ping?from=address-bar")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    page.click("#ping-private")
    expect(page.locator("#ping-message")).to_contain_text(PRIVATE_MESSAGE)
