"""Markers by folder, one kind of test per pytest process, and the shared browser.

Every test in tests/e2e is marked `browser`, in tests/deploy `deploy`, in tests/faults
`faults`. Those three run in pytest processes of their own (`make test-e2e`,
`make test-deploy`, `make test-faults`): Playwright's event loop breaks asyncio tests
collected after it, and the apps they start share `.web/`. A run that selects tests
of two kinds stops with a usage message; `-m "not browser and not deploy and not
faults"` selects the fast ones (`make test-fast`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

HERE = Path(__file__).resolve().parent
#: The marker each folder's tests get.
FOLDER_MARKERS = {"e2e": "browser", "deploy": "deploy", "faults": "faults"}


def uses_browser(item: pytest.Item) -> bool:
    """Whether the test drives Chromium (directly, or through `context` or `page`)."""
    return "browser" in getattr(item, "fixturenames", ())


def kind(item: pytest.Item) -> str:
    """The folder's marker, or "fast"."""
    relative = item.path.resolve().relative_to(HERE)
    return FOLDER_MARKERS.get(relative.parts[0], "fast")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if (marker := kind(item)) != "fast":
            item.add_marker(getattr(pytest.mark, marker))
        if uses_browser(item):
            # Once more if Chromium hung (pytest-rerunfailures); any other failure stands.
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=["BrowserHung"]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A browser test's body runs under the watchdog (tests/support/browser.py)."""
    if not uses_browser(item):
        return (yield)
    from tests.support.browser import watchdog

    with watchdog(item.nodeid):
        return (yield)


def pytest_collection_finish(session: pytest.Session) -> None:
    kinds = sorted({kind(item) for item in session.items})
    if len(kinds) > 1:
        pytest.exit(
            f"this run selects {' and '.join(kinds)} tests: each kind runs in a pytest "
            "process of its own (make test-fast, test-e2e, test-deploy, test-faults; "
            "or pass one folder, or -m 'not browser and not deploy and not faults')",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    from tests.support.browser import LiveBrowser, watchdog

    with sync_playwright() as playwright:
        running = LiveBrowser(playwright)
        yield running.as_browser()
        with watchdog("closing the browser"):
            running.current.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    from tests.support.browser import new_context, watchdog

    fresh = new_context(browser)
    yield fresh
    with watchdog("closing a browser context"):
        fresh.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page of its own (a fresh profile: no cookies, no storage)."""
    return context.new_page()
