"""DPoP (RFC 9449) end to end against an OpenID Provider nobody here wrote.

panva's `oidc-provider` (tests/e2e/independent_op/server.mjs) runs with its `dPoP`
feature and, with RESOURCE set, issues RFC 9068 JWT access tokens for the app's API
audience (RFC 8707). The app, with only AUTH_ISSUER set (AUTH_DPOP defaults to auto),
binds its tokens to a key its server holds: the pings succeed through the shared
client, and the same access token without a proof from that key is refused by the
app's own API.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx2
import jwt
import pytest
from playwright.sync_api import BrowserContext, expect

from pingapp.dpop import DPoPKey, make_proof
from pingapp.settings import DEFAULT_AUDIENCE
from tests.support.app import PRIVATE_MESSAGE, wait_for_sessions
from tests.support.op import Independent, app_at_independent_op, sign_in_at_oidc_provider


@pytest.fixture(scope="module")
def independent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Independent]:
    resource = {"RESOURCE": DEFAULT_AUDIENCE}  # JWT access tokens for the app's API
    with app_at_independent_op(tmp_path_factory.mktemp("independent-dpop"), resource) as running:
        yield running


def test_pings_with_a_dpop_bound_token_from_oidc_provider(
    independent: Independent, context: BrowserContext
) -> None:
    app, op = independent.app, independent.op
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_oidc_provider(page, op)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()

    message = page.locator("#ping-message")
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
    page.click("#ping-scoped")
    expect(message).to_contain_text("have a scope of read:messages")

    # The token the provider issued is bound to a key (cnf.jkt) ...
    [stored] = wait_for_sessions(independent.states_dir, 1)
    claims = jwt.decode(stored.access_token, options={"verify_signature": False})
    assert claims["iss"] == op
    assert claims["aud"] == DEFAULT_AUDIENCE
    jkt = claims["cnf"]["jkt"]
    expect(page.locator("#token-binding")).to_contain_text(jkt)

    # ... so, leaked, it is useless: as a bearer token, or with a proof from another key.
    url = app.backend + "/api/private"
    as_bearer = httpx2.get(url, headers={"Authorization": f"Bearer {stored.access_token}"})
    assert as_bearer.status_code == 401
    assert "DPoP" in as_bearer.headers["www-authenticate"]
    thief = DPoPKey.generate()
    assert thief.jkt != jkt
    proof = make_proof(thief, "GET", url, access_token=stored.access_token)
    stolen = httpx2.get(
        url, headers={"Authorization": f"DPoP {stored.access_token}", "DPoP": proof}
    )
    assert stolen.status_code == 401
    assert 'error="invalid_dpop_proof"' in stolen.headers["www-authenticate"]


def test_the_app_publishes_its_protected_resource_metadata(independent: Independent) -> None:
    """RFC 9728, at the well-known URL for the resource `<backend>/api`."""
    app, op = independent.app, independent.op
    answer = httpx2.get(app.backend + "/.well-known/oauth-protected-resource/api")
    assert answer.status_code == 200
    document = answer.json()
    # The API's public URL: the backend's, as the app names it (REFLEX_API_URL).
    resource = urlsplit(document["resource"])
    assert (resource.port, resource.path) == (urlsplit(app.backend).port, "/api")
    assert resource.hostname in {"localhost", "127.0.0.1"}
    assert document["authorization_servers"] == [op]
    assert "read:messages" in document["scopes_supported"]
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert document["dpop_bound_access_tokens_required"] is False
