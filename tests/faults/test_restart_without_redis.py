"""The backend restarted without Redis (`make run` again, states on disk).

What really happens: `reflex run` empties Reflex's states folder when it starts
(`reset_disk_state_manager()` in reflex/reflex.py, 0.10.1), and the server-side
sessions live in that state manager; the embedded provider keeps its records in
process memory. So a restart signs everyone out. The open page reconnects by
itself and shows the user signed out; a reload asks them to log in, and a new
sign-in works. Sessions that must survive a restart need REFLEX_REDIS_URL
(test_restarts.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.deploy.conftest import PRIVATE_MESSAGE, PUBLIC_MESSAGE, sign_in
from tests.e2e.conftest import RunningApp, start_app, stored_sessions, wait_for_sessions
from tests.faults.conftest import APP_ENV, restart_app


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


def test_a_restart_without_redis_signs_the_user_out(
    app: RunningApp, app_env: dict[str, str], states_dir: Path, page: Page
) -> None:
    sign_in(page, app.url)
    message = page.locator("#ping-message")
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
    wait_for_sessions(states_dir, 1)

    restart_app(app, app_env)
    assert list(states_dir.glob("*.pkl")) == [] or stored_sessions(states_dir) == []
    # The same page reconnects (events answer again) and shows the user signed out.
    page.click("#ping-public")
    expect(message).to_contain_text(PUBLIC_MESSAGE)
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    expect(page.locator("#ping-private")).to_have_count(0)
    page.reload()
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    # Asked to sign in again, which works.
    sign_in(page, app.url)
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
