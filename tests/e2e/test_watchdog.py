"""The browser tests' own safety net (tests/support/browser.py): a Playwright call
that Chromium never answers fails as BrowserHung instead of waiting for ever, and
the next test gets a browser that works."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.support.browser import BrowserHung, watchdog


def test_a_call_chromium_never_answers_fails_and_the_browser_comes_back(
    browser: Browser,
) -> None:
    context = browser.new_context()
    page = context.new_page()
    hung = context.browser
    assert hung is not None
    # Playwright gives `evaluate` no timeout: a promise that never settles waits for ever.
    with pytest.raises(BrowserHung, match="did not answer for 2 s"), watchdog("a test", 2):
        page.evaluate("() => new Promise(() => {})")
    assert not hung.is_connected()  # killed, so the call above could fail
    again = browser.new_context()  # a new Chromium, launched for the next test
    assert again.browser is not hung
    assert again.new_page().evaluate("() => 6 * 7") == 42
    again.close()
