"""`make run` (docs/security.md 52): Vite's dev server sends the pages' security headers,
with a policy that allows no eval, and inline scripts only by the hashes of the
ones in the page it serves; the app works under it in Chromium (sign-in and out
included), and so do the API's docs on the backend."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from playwright.sync_api import Page, expect

from pingapp.web.headers import PAGE_HEADERS, dev_policy, inline_scripts, script_hash
from tests.support.app import RunningApp, start_app
from tests.support.browser import ping_private, sign_in, sign_out
from tests.support.csp import assert_strict, directives, use_api_docs, use_home_and_ping, watch


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app("run", tmp_path_factory.mktemp("csp-dev"))
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/", "/ping", "/callback", "/no/such/page"])
def test_dev_pages_allow_their_own_inline_scripts_and_nothing_else(
    app: RunningApp, path: str
) -> None:
    page = httpx2.get(app.url + path)
    assert page.headers["content-type"].startswith("text/html")
    [policy] = page.headers.get_list("content-security-policy")
    parsed = assert_strict(policy)
    # The dev policy (the backend on its own port), plus exactly the hashes of the
    # inline scripts in this answer.
    backend_port = app.backend.rsplit(":", 1)[1]
    expected = directives(dev_policy(f"http://localhost:{backend_port}"))
    scripts = inline_scripts(page.text)
    assert scripts, "the dev server's pages have inline scripts"
    expected["script-src"] += sorted({script_hash(text) for text in scripts})
    assert {name: sorted(sources) for name, sources in parsed.items()} == {
        name: sorted(sources) for name, sources in expected.items()
    }
    for name, value in PAGE_HEADERS.items():
        if name != "Content-Security-Policy":
            assert page.headers.get_list(name) == [value], name


def test_dev_scripts_get_nosniff_and_no_page_policy(app: RunningApp) -> None:
    script = httpx2.get(app.url + "/app/entry.client.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in script.headers


def test_home_and_ping_run_under_the_dev_policy(app: RunningApp, page: Page) -> None:
    problems = watch(page)
    use_home_and_ping(page, app.url)
    assert problems == []


def test_sign_in_private_ping_profile_and_sign_out_under_the_dev_policy(
    app: RunningApp, page: Page
) -> None:
    problems = watch(page)
    sign_in(page, app.url)
    ping_private(page)
    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text("Alice")
    # The embedded provider's avatar, from the backend's port.
    expect(page.locator("img[src*='/idp/avatar/']").first).to_be_visible()
    sign_out(page, app.url)
    assert problems == []


def test_api_docs_on_the_dev_backend_run_under_their_policy(app: RunningApp, page: Page) -> None:
    problems = watch(page)
    use_api_docs(page, app.backend + "/api/docs")
    assert problems == []
