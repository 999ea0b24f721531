"""An API that cannot be reached: the user is told where and what to check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.support.app import RunningApp, start_app
from tests.support.net import free_port


@pytest.fixture(scope="module")
def dead_api_url() -> str:
    return f"http://127.0.0.1:{free_port()}/api"


@pytest.fixture(scope="module")
def app(dead_api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app("run", tmp_path_factory.mktemp("down"), env={"API_URL": dead_api_url})
    yield running
    running.stop()


def test_unreachable_api_is_explained_and_the_spinner_stops(
    app: RunningApp, page: Page, dead_api_url: str
) -> None:
    page.goto(app.url + "/ping")
    page.click("#ping-public")
    message = page.locator("#ping-message")
    expect(message).to_contain_text(f"The API at {dead_api_url}/public could not be reached")
    expect(message).to_contain_text("Check API_URL")
    expect(page.locator("#ping-loading")).to_have_count(0)
    expect(page.locator("#ping-public")).to_be_enabled()
