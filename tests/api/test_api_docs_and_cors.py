"""The OpenAPI page signs in with code + PKCE (docs/security.md item 12), and CORS."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from pingapp.api.verifier import TokenVerifier
from pingapp.settings import Settings, get_settings
from tests.support.api import FRONTEND, bearer, make_api
from tests.support.issuers import Issuer, Minter


@pytest.fixture
async def mounted(verifier: TokenVerifier) -> AsyncIterator[httpx2.AsyncClient]:
    """The API under `/api`, mounted the way pingapp mounts it in Reflex."""
    app = Starlette(routes=[Mount("/api", app=make_api(verifier))])
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def init_oauth(page: str) -> dict:
    match = re.search(r"ui\.initOAuth\((\{.*?\})\)", page, re.DOTALL)
    assert match, "the docs page configures no OAuth sign-in"
    return json.loads(match.group(1))


async def test_authorize_uses_the_code_flow_with_pkce_and_no_secret(
    mounted: httpx2.AsyncClient,
) -> None:
    page = await mounted.get("/api/docs")
    assert page.status_code == 200
    assert "/api/openapi.json" in page.text
    assert "/api/docs/oauth2-redirect" in page.text
    options = init_oauth(page.text)
    assert options["usePkceWithAuthorizationCodeGrant"] is True
    assert options["clientId"] == get_settings().docs_client_id
    assert "clientSecret" not in options
    assert "secret" not in page.text.lower()
    assert "read:messages" in options["scopes"].split()
    redirect = await mounted.get("/api/docs/oauth2-redirect")
    assert redirect.status_code == 200


@pytest.mark.parametrize(
    ("values", "client_id"),
    [
        ({}, "pingapp-docs"),  # the embedded provider's docs client
        ({"AUTH_CLIENT_ID": "my-app"}, "pingapp-docs"),
        ({"AUTH_ISSUER": "https://idp.example.test/", "AUTH_CLIENT_ID": "my-app"}, "my-app"),
        ({"API_DOCS_CLIENT_ID": "swagger", "AUTH_CLIENT_ID": "my-app"}, "swagger"),
    ],
)
async def test_authorize_signs_in_with_the_docs_client(
    mounted: httpx2.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    values: dict[str, str],
    client_id: str,
) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    monkeypatch.setattr("pingapp.api.app.get_settings", lambda: settings)
    options = init_oauth((await mounted.get("/api/docs")).text)
    assert options["clientId"] == client_id


async def test_the_schema_names_the_providers_endpoints_and_the_scopes(
    mounted: httpx2.AsyncClient, issuer: Issuer
) -> None:
    schema = (await mounted.get("/api/openapi.json")).json()
    assert schema["servers"] == [{"url": "/api"}]
    scheme = schema["components"]["securitySchemes"]["OAuth2"]
    assert scheme["type"] == "oauth2"
    # Only the authorization code flow: no implicit, password or client credentials.
    assert set(scheme["flows"]) == {"authorizationCode"}
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{issuer.url}/authorize"
    assert flow["tokenUrl"] == f"{issuer.url}/token"
    assert set(flow["scopes"]) == {"openid", "read:messages"}
    paths = schema["paths"]
    assert paths["/private"]["get"]["security"] == [{"OAuth2": []}]
    assert paths["/private-scoped"]["get"]["security"] == [{"OAuth2": ["read:messages"]}]
    assert "security" not in paths["/public"]["get"]


async def test_the_schema_is_served_even_when_the_provider_is_down(
    mounted: httpx2.AsyncClient, server: object
) -> None:
    server.stop()  # type: ignore[attr-defined]
    response = await mounted.get("/api/openapi.json")
    assert response.status_code == 200
    assert "/private" in response.json()["paths"]


async def test_the_mounted_api_checks_tokens_too(mounted: httpx2.AsyncClient, mint: Minter) -> None:
    assert (await mounted.get("/api/private", headers=bearer(mint.token()))).status_code == 200
    assert (await mounted.get("/api/private")).status_code == 401


# -- CORS -----------------------------------------------------------------------------------


async def test_a_preflight_from_the_frontend_may_send_authorization(
    client: httpx2.AsyncClient,
) -> None:
    response = await client.options(
        "/private-scoped",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == FRONTEND
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed


async def test_another_origin_gets_no_cors_grant(client: httpx2.AsyncClient) -> None:
    preflight = await client.options(
        "/private",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await client.get("/public", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_errors_are_readable_by_the_frontend(client: httpx2.AsyncClient) -> None:
    response = await client.get("/private", headers={"Origin": FRONTEND})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()
