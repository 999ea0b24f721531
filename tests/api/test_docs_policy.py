"""The API's docs pages carry a policy of their own (docs/security.md 52): Swagger UI's
files from this origin, their inline script by its hash, no 'unsafe-eval', no
framing, and fetches to the provider's token endpoint (for "Authorize")."""

from __future__ import annotations

import httpx2
import pytest

from pingapp.urls import origin_of
from pingapp.web.headers import inline_scripts, script_hash
from tests.support.csp import directives
from tests.support.issuers import Issuer, Server


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
async def test_docs_pages_allow_exactly_their_own_scripts(
    client: httpx2.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    [policy] = page.headers.get_list("content-security-policy")
    parsed = directives(policy)
    assert "'unsafe-eval'" not in policy
    assert parsed["frame-ancestors"] == ["'none'"]
    assert parsed["object-src"] == ["'none'"]
    scripts = inline_scripts(page.text)
    assert scripts, "Swagger UI's page has an inline script"
    assert parsed["script-src"] == ["'self'", *sorted({script_hash(s) for s in scripts})]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


async def test_the_docs_page_may_reach_the_token_endpoint(
    client: httpx2.AsyncClient, issuer: Issuer
) -> None:
    policy = (await client.get("/docs")).headers["content-security-policy"]
    token_endpoint = issuer.discovery()["token_endpoint"]
    assert directives(policy)["connect-src"] == ["'self'", origin_of(token_endpoint)]


async def test_without_the_provider_the_docs_page_reaches_its_own_origin_only(
    client: httpx2.AsyncClient, server: Server
) -> None:
    server.stop()
    page = await client.get("/docs")
    assert page.status_code == 200
    assert directives(page.headers["content-security-policy"])["connect-src"] == ["'self'"]


async def test_no_validator_badge_from_another_site(client: httpx2.AsyncClient) -> None:
    page = (await client.get("/docs")).text
    assert '"validatorUrl": null' in page
