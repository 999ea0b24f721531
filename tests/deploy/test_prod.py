"""`make prod`: one port serves the built pages, the events, the API, the cookie
hop and the embedded provider, whose issuer and redirect URIs follow that port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.app import RunningApp, start_app
from tests.support.browser import csp_watch, ping_private, sign_in, sign_out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("prod")
    running = start_app("prod", tmp, env={"REFLEX_STATES_WORKDIR": str(tmp / "states")})
    yield running
    running.stop()


def test_sign_in_private_ping_and_sign_out_on_one_port(app: RunningApp, page: Page) -> None:
    issuer = httpx.get(app.backend + "/idp/.well-known/openid-configuration").json()["issuer"]
    assert issuer.endswith(f":{app.url.rsplit(':', 1)[1]}/idp")
    complaints = csp_watch(page)
    sign_in(page, app.url)
    ping_private(page)
    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text("Alice")
    sign_out(page, app.url)
    assert complaints == []
