"""The secured ping in real Chromium: private and scoped calls carry the token,
a declined scope gives an explained 403, and a signed-out client gets nothing
even when it sends the event by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from tests.support.app import RunningApp, start_app
from tests.support.browser import sign_in_at_provider


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run", tmp_path_factory.mktemp("ping"), env={"IDP_USERS": "alice:alice,dave:dave"}
    )
    yield running
    running.stop()


def signed_in_page(browser: Browser, app: RunningApp, user: str, **consent) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user, **consent)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    return page


def test_private_and_scoped_pings_answer(app: RunningApp, browser: Browser) -> None:
    page = signed_in_page(browser, app, "alice")
    expect(page).to_have_url(app.url + "/ping")
    message = page.locator("#ping-message")
    page.click("#ping-private")
    expect(message).to_have_text(
        "Hello from a private endpoint! You need to be authenticated to see this."
    )
    expect(page.locator("#ping-timing")).to_contain_text("HTTP 200")
    page.click("#ping-scoped")
    expect(message).to_contain_text("have a scope of read:messages")
    # The inspector shows the decoded token: audience, scopes, claims; never the token.
    expect(page.locator("#token-audience")).to_contain_text("urn:pingapp:api")
    expect(page.locator("#token-scopes")).to_contain_text("read:messages")
    expect(page.locator("#token-claims")).to_contain_text('"client_id": "pingapp"')
    expect(page.locator("#token-header")).to_contain_text('"typ": "at+jwt"')
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+", page.content())
    page.context.close()


def test_a_declined_scope_gives_an_explained_403(app: RunningApp, browser: Browser) -> None:
    page = signed_in_page(browser, app, "dave", untick=("read:messages",))
    expect(page.locator("#token-scopes")).not_to_contain_text("read:messages")
    page.click("#ping-private")
    expect(page.locator("#ping-timing")).to_contain_text("HTTP 200")
    page.click("#ping-scoped")
    message = page.locator("#ping-message")
    expect(message).to_contain_text("Forbidden (403)")
    expect(message).to_contain_text("read:messages")
    expect(message).to_contain_text("grant")
    # The way forward: back to the provider's consent page.
    page.click("#review-permissions")
    expect(page.locator("#consent-allow")).to_be_visible()
    page.context.close()


def test_signed_out_private_buttons_are_hidden_and_forged_events_get_nothing(
    app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    to_server: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:
        to_server.append(ws.connect_to_server())

    # Every frame passes through unchanged; the test may add its own.
    page.route_web_socket(re.compile(r"/_reflex/_event"), relay)
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda frame: frames.append(str(frame))),
    )
    page.goto(app.url + "/ping")
    expect(page.locator("#ping-private")).to_have_count(0)
    expect(page.locator("#ping-scoped")).to_have_count(0)
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text("public endpoint")

    # A hand-made event: the public ping's frame, renamed to the private ping.
    sent = next(frame for frame in frames if "ping_public" in frame)
    assert to_server
    to_server[-1].send(sent.replace("ping_public", "ping_private"))
    message = page.locator("#ping-message")
    expect(message).to_contain_text("Sign in first")
    expect(message).not_to_contain_text("Hello from a private endpoint")
    context.close()
