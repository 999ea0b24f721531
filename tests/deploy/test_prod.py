"""`make prod`: one port serves the built pages, the events, the API, the cookie
hop and the embedded provider, whose issuer and redirect URIs follow that port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from playwright.sync_api import Page, expect

from pingapp.web.headers import PAGE_HEADERS, PAGE_POLICY, inline_scripts
from tests.support.app import PUBLIC_MESSAGE, RunningApp, start_app
from tests.support.browser import csp_watch, ping_private, sign_in, sign_out
from tests.support.csp import assert_strict, use_api_docs, use_home_and_ping, watch


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("prod")
    running = start_app("prod", tmp, env={"REFLEX_STATES_WORKDIR": str(tmp / "states")})
    yield running
    running.stop()


def test_sign_in_private_ping_and_sign_out_on_one_port(app: RunningApp, page: Page) -> None:
    issuer = httpx2.get(app.backend + "/idp/.well-known/openid-configuration").json()["issuer"]
    assert issuer.endswith(f":{app.url.rsplit(':', 1)[1]}/idp")
    complaints = csp_watch(page)
    sign_in(page, app.url)
    ping_private(page)
    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text("Alice")
    sign_out(page, app.url)
    assert complaints == []


def test_the_printed_address_leads_to_a_working_app(app: RunningApp, page: Page) -> None:
    """Reflex prints `App running at: http://127.0.0.1:<port>/` (the address it
    listens on); the app's origin is localhost. Opening the printed address sends
    the browser there, where the websocket works; the API answers at either name."""
    port = app.url.rsplit(":", 1)[1]
    assert f"http://127.0.0.1:{port}/" in app.log.read_text()
    page.goto(f"http://127.0.0.1:{port}/")
    expect(page).to_have_url(app.url + "/")
    page.goto(f"http://127.0.0.1:{port}/ping/")
    expect(page).to_have_url(app.url + "/ping/")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    api = httpx2.get(f"http://127.0.0.1:{port}/api/public")
    assert api.status_code == 200


# --- Security headers (docs/security.md 52): Reflex's server sends pingapp.web.headers'
# values with every page; the backend's own answers keep theirs.

PAGES = ["/", "/ping/", "/profile/", "/callback/", "/no/such/page"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_the_policy_and_run_no_inline_script(app: RunningApp, path: str) -> None:
    response = httpx2.get(app.url + path)
    assert response.headers["content-type"].startswith("text/html")
    for name, value in PAGE_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    assert_strict(PAGE_POLICY)
    # Every script the page runs is a file ('self'): the build moved the inline ones.
    assert "<script" in response.text
    assert inline_scripts(response.text) == []


def test_backend_answers_keep_their_own_headers(app: RunningApp) -> None:
    for path in ("/_reflex/ping", "/api/public", "/.well-known/oauth-protected-resource/api"):
        answer = httpx2.get(app.url + path)
        assert answer.status_code == 200, path
        assert "content-security-policy" not in answer.headers, path
    docs = httpx2.get(app.url + "/api/docs")
    [policy] = docs.headers.get_list("content-security-policy")
    assert policy != PAGE_POLICY  # Swagger UI's own, with its inline script's hash
    assert_strict(policy)


def test_home_and_ping_run_under_the_policy(app: RunningApp, page: Page) -> None:
    problems = watch(page)
    use_home_and_ping(page, app.url)
    assert problems == []


def test_api_docs_run_under_their_policy(app: RunningApp, page: Page) -> None:
    problems = watch(page)
    use_api_docs(page, app.url + "/api/docs")
    assert problems == []


@pytest.mark.parametrize(("path", "back_to"), [("/ping/", "%2Fping"), ("/profile/", "%2Fprofile")])
def test_log_in_comes_back_to_its_page_from_the_first_paint(
    app: RunningApp, path: str, back_to: str
) -> None:
    """Log In is a plain link in the served HTML: pressed before the page is
    hydrated, it still returns to this page (a race a browser test once lost)."""
    html = httpx2.get(app.url + path).text
    assert f'/auth/login?return_to={back_to}"' in html
