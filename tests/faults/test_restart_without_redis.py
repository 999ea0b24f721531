"""The backend restarted without Redis (`make run` again, states on disk).

What really happens: `reflex run` empties Reflex's states folder when it starts
(`reset_disk_state_manager()` in reflex/reflex.py, 0.10.1), so every tab's page
state is new; the server-side sessions live in pingapp's own store beside it
(`.states-sessions/`, encrypted), which a restart keeps. So the user is still
signed in after a reload, and the access token still works (the embedded
provider's signing key is on disk too; its refresh-token records are in memory,
so the next refresh asks the user to sign in again). Several backends need
REFLEX_REDIS_URL (test_restarts.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.app import (
    PRIVATE_MESSAGE,
    PUBLIC_MESSAGE,
    RunningApp,
    restart_app,
    start_app,
    stored_sessions,
    wait_for_sessions,
)
from tests.support.browser import sign_in
from tests.support.faults import APP_ENV


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("restart-states")


@pytest.fixture(scope="module")
def app_env(states_dir: Path) -> dict[str, str]:
    return {**APP_ENV, "REFLEX_STATES_WORKDIR": str(states_dir)}


@pytest.fixture(scope="module")
def app(app_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app("run", tmp_path_factory.mktemp("restart-no-redis"), env=app_env)
    yield running
    running.stop()


def test_a_restart_without_redis_keeps_the_user_signed_in(
    app: RunningApp, app_env: dict[str, str], states_dir: Path, page: Page
) -> None:
    sign_in(page, app.url)
    message = page.locator("#ping-message")
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
    wait_for_sessions(states_dir, 1)
    # The tab is closed first: open, it would reconnect as soon as the backend is
    # back and write its page state again, racing with the check below.
    browser_profile = page.context
    page.close()

    restart_app(app, app_env)
    assert not list(states_dir.glob("*.pkl"))  # Reflex's page states were emptied
    assert len(stored_sessions(states_dir)) == 1  # the session was not
    # A new tab of the same browser: its cookie names the session.
    page = browser_profile.new_page()
    page.goto(app.url + "/ping")
    message = page.locator("#ping-message")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
    page.click("#ping-public")
    expect(message).to_contain_text(PUBLIC_MESSAGE)
