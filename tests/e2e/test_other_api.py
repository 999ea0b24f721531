"""API_URL pointing at another API server: the token goes there only when that
origin is on the allowlist."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from tests.support.app import RunningApp, start_app
from tests.support.browser import sign_in_at_provider
from tests.support.net import free_port
from tests.support.processes import Server


def start_second_api(port: int, issuer: str, log: Path) -> Server:
    """pingapp's API app alone, on `port`, trusting the app's embedded provider."""
    api = Server(
        "the second API",
        [
            sys.executable, "-m", "granian", "--interface", "asgi",
            "--host", "127.0.0.1", "--port", str(port), "tests.e2e.second_api:app",
        ],
        # API_URL: its public URL, which DPoP proofs name (htu).
        {"AUTH_ISSUER": issuer, "API_URL": f"http://127.0.0.1:{port}"},
        log,
    ).start()  # fmt: skip
    api.wait_until(f"http://127.0.0.1:{port}/public", "", timeout=30, status=200)
    return api


@pytest.fixture(scope="module", params=["allowed", "not allowed"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningApp, str, bool]]:
    allowed = request.param == "allowed"
    port = free_port()
    second = f"http://127.0.0.1:{port}"
    env = {"API_URL": second}
    if not allowed:
        env["API_ALLOWED_ORIGINS"] = "http://127.0.0.1:1"  # anywhere but the second API
    folder = tmp_path_factory.mktemp("other-api")
    app = start_app("run", folder, env=env)
    issuer = app.backend.replace("127.0.0.1", "localhost") + "/idp"
    api = start_second_api(port, issuer, folder / "second-api.log")
    yield app, second, allowed
    api.stop()
    app.stop()


def test_pings_go_to_api_url_with_the_token_only_if_allowed(
    setup: tuple[RunningApp, str, bool], browser: Browser
) -> None:
    app, second, allowed = setup
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()

    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text("public endpoint")
    page.click("#ping-private")
    message = page.locator("#ping-message")
    if allowed:
        expect(message).to_contain_text("Hello from a private endpoint!")
    else:
        expect(message).to_contain_text("API_ALLOWED_ORIGINS")
    seen = httpx2.get(second + "/seen").json()
    assert seen[-2:] == ["/public none", "/private token" if allowed else "/private none"]
    assert ("/private token" in seen) == allowed
    context.close()
