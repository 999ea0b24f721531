"""The static export behind nginx, one backend on a port of its own: the pages
come from files, the events, API, cookie hop and provider through nginx's proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Page

from pingapp.web.headers import PAGE_HEADERS, PAGE_POLICY, inline_scripts
from tests.support.browser import csp_watch, ping_private, sign_in, sign_out
from tests.support.csp import assert_strict, use_api_docs, use_home_and_ping, watch
from tests.support.deploy import StaticSite, backend, start_backends, start_nginx
from tests.support.net import free_port
from tests.support.processes import Server


@pytest.fixture(scope="module")
def deployed(site: StaticSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    tmp = tmp_path_factory.mktemp("static")
    port = free_port()
    server = backend("backend", port, site.url, tmp, REFLEX_STATES_WORKDIR=str(tmp / "states"))
    start_backends(server)
    nginx: Server | None = None
    try:
        nginx = start_nginx(tmp / "nginx", site, [port])
        yield site
    finally:
        if nginx:
            nginx.stop()
        server.stop()


def test_sign_in_private_ping_and_sign_out_with_no_csp_violation(
    deployed: StaticSite, page: Page
) -> None:
    complaints = csp_watch(page)
    sign_in(page, deployed.url)
    ping_private(page)
    page.click("#nav-profile")
    page.locator("#profile-name").wait_for()
    sign_out(page, deployed.url)
    assert complaints == []


def test_headers_pages_revalidate_assets_cache_callback_has_no_referrer(
    deployed: StaticSite,
) -> None:
    home = httpx2.get(deployed.url + "/")
    assert home.status_code == 200
    assert home.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert home.headers["x-content-type-options"] == "nosniff"
    assert home.headers["referrer-policy"] == "no-referrer"

    callback = httpx2.get(deployed.url + "/callback?code=x&state=y")
    assert callback.status_code == 200
    assert callback.headers["referrer-policy"] == "no-referrer"
    assert 'name="referrer"' in callback.text or "name=referrer" in callback.text

    # A script the export compressed (it leaves out the smallest files).
    scripts = Path(deployed.root, "assets").glob("*.js")
    asset = next(path.name for path in scripts if path.with_name(path.name + ".gz").exists())
    script = httpx2.get(f"{deployed.url}/assets/{asset}", headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200
    assert script.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    assert script.headers["cache-control"] == "max-age=315360000"
    assert script.headers["content-encoding"] == "gzip"  # the export's .gz, served as is
    assert script.headers["x-content-type-options"] == "nosniff"
    assert httpx2.get(deployed.url + "/assets/missing-0000.js").status_code == 404

    # An unknown route gets the SPA fallback, which routes in the browser.
    assert "<html" in httpx2.get(deployed.url + "/no/such/page").text
    # The backend's own answers pass through, with its headers.
    assert httpx2.get(deployed.url + "/_reflex/ping").text == '"pong"'
    public = httpx2.get(deployed.url + "/api/public")
    assert public.status_code == 200
    assert "content-security-policy" not in public.headers
    issuer = httpx2.get(deployed.url + "/idp/.well-known/openid-configuration").json()["issuer"]
    assert issuer == deployed.url + "/idp"


# --- Security headers (docs/security.md 52): nginx sends pingapp.web.headers' values (the
# ones `make prod` sends) with the exported pages, whose scripts are all files.


@pytest.mark.parametrize("path", ["/", "/ping", "/callback", "/no/such/page"])
def test_pages_carry_the_apps_policy_and_run_no_inline_script(
    deployed: StaticSite, path: str
) -> None:
    page = httpx2.get(deployed.url + path)
    assert page.status_code == 200
    assert page.headers.get_list("content-security-policy") == [PAGE_POLICY]
    for name, value in PAGE_HEADERS.items():
        assert page.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in page.headers  # plain http
    assert "<script" in page.text
    assert inline_scripts(page.text) == []


def test_every_exported_page_runs_scripts_from_files_only(deployed: StaticSite) -> None:
    pages = list(deployed.root.rglob("*.html"))
    assert len(pages) >= 5
    for html in pages:
        assert inline_scripts(html.read_text()) == [], html.name
        for src in re.findall(r'<script[^>]* src="/assets/([^"]+)"', html.read_text()):
            assert (deployed.root / "assets" / src).is_file(), src


def test_backend_pages_and_metadata_through_nginx(deployed: StaticSite) -> None:
    metadata = httpx2.get(deployed.url + "/.well-known/oauth-protected-resource/api")
    assert metadata.status_code == 200
    assert metadata.json()["resource"] == deployed.url + "/api"
    docs = httpx2.get(deployed.url + "/api/docs")
    [policy] = docs.headers.get_list("content-security-policy")
    assert policy != PAGE_POLICY  # Swagger UI's own, from the backend
    assert_strict(policy)


def test_home_and_ping_run_under_the_policy(deployed: StaticSite, page: Page) -> None:
    problems = watch(page)
    use_home_and_ping(page, deployed.url)
    assert problems == []


def test_api_docs_run_under_their_policy(deployed: StaticSite, page: Page) -> None:
    problems = watch(page)
    use_api_docs(page, deployed.url + "/api/docs")
    assert problems == []
