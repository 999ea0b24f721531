"""Sign-in and sign-out in real Chromium against an OpenID Provider nobody here wrote.

The provider is panva's certified `oidc-provider` from npm (version pinned in
tests/e2e/independent_op/package.json), run locally by tests/e2e/independent_op/
server.mjs. The app runs with its default scope and audience settings; only
AUTH_ISSUER points it at this provider, which turns the embedded one off.
oidc-provider ignores the `audience` parameter the app sends by default (it knows
only RFC 8707's `resource`), so the access token it issues is an opaque one for
its userinfo endpoint: this test covers sign-in, profile and sign-out, not the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.support.app import RunningApp, stored_sessions, wait_for_sessions
from tests.support.op import (
    EMAIL,
    NAME,
    USER,
    Independent,
    app_at_independent_op,
    sign_in_at_oidc_provider,
)


@pytest.fixture(scope="module")
def independent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Independent]:
    with app_at_independent_op(tmp_path_factory.mktemp("independent")) as running:
        yield running


@pytest.fixture(scope="module")
def app(independent: Independent) -> RunningApp:
    return independent.app


@pytest.fixture(scope="module")
def op(independent: Independent) -> str:
    return independent.op


@pytest.fixture(scope="module")
def states_dir(independent: Independent) -> Path:
    return independent.states_dir


def test_sign_in_profile_and_sign_out_at_oidc_provider(
    app: RunningApp, op: str, context: BrowserContext, states_dir: Path
) -> None:
    started = time.perf_counter()
    page = context.new_page()
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")

    page.click("#qsLoginBtn")
    sign_in_at_oidc_provider(page, op)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are logged in!")
    assert "code=" not in page.url

    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text(NAME)
    expect(page.locator("#profile-email")).to_have_text(EMAIL)
    expect(page.locator("#profile-claims")).to_contain_text(f'"sub": "{USER}"')

    [stored] = wait_for_sessions(states_dir, 1)
    assert stored.access_token
    assert stored.id_token
    assert stored.claims["iss"] == op
    assert stored.claims["sub"] == USER

    # Sign out: the app revokes, then sends the browser to the provider's
    # end_session_endpoint, which asks before it ends its own session.
    page.click("#qsLogoutBtn")
    confirm = page.get_by_role("button", name="Yes, sign me out")
    expect(confirm).to_be_visible()
    assert page.url.startswith(op + "/session/end")
    confirm.click()
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    wait_for_sessions(states_dir, 0)

    # The provider's own session ended too: signing in again asks for a login.
    page.click("#qsLoginBtn")
    expect(page.locator("input[name=login]")).to_be_visible()
    elapsed = time.perf_counter() - started
    print(f"\nsign-in, profile and sign-out at oidc-provider: {elapsed:.2f} s")


def test_default_scope_gets_a_refresh_token(
    app: RunningApp, op: str, context: BrowserContext, states_dir: Path
) -> None:
    page = context.new_page()
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_oidc_provider(page, op)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    [stored] = wait_for_sessions(states_dir, 1)
    assert "offline_access" in stored.scope.split(), f"granted: {stored.scope!r}"
    assert stored.refresh_token


def test_signing_out_at_the_provider_signs_every_tab_out_by_back_channel(
    app: RunningApp, op: str, context: BrowserContext, states_dir: Path
) -> None:
    before = len(stored_sessions(states_dir))  # earlier tests' sessions, other browsers
    page = context.new_page()
    authorize: list[str] = []
    page.on(
        "request",
        lambda request: (
            authorize.append(request.url) if request.url.startswith(op + "/auth?") else None
        ),
    )
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_oidc_provider(page, op)
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    # PAR (RFC 9126): the browser's authorization URL carries only these two.
    query = parse_qs(urlsplit(authorize[0]).query)
    assert sorted(query) == ["client_id", "request_uri"], authorize[0]
    second = context.new_page()
    second.goto(app.url + "/profile")
    expect(second.locator("#profile-name")).to_have_text(NAME)
    wait_for_sessions(states_dir, before + 1)

    # Sign out at the provider itself, in a third tab: it tells the app by back channel.
    provider_tab = context.new_page()
    provider_tab.goto(op + "/session/end")
    provider_tab.get_by_role("button", name="Yes, sign me out").click()
    for tab in (page, second):
        expect(tab.locator("#qsLoginBtn")).to_be_visible(timeout=2_000)
    # Only this browser's provider session (its `sid`) ended.
    wait_for_sessions(states_dir, before)
