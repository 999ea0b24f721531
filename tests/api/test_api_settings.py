"""The verifier built from the settings follows them (issuer, audience, algorithms, typ)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from pingapp.api import create_api
from pingapp.api.security import NotConfigured, build_verifier
from pingapp.api.verifier import TokenVerifier
from pingapp.settings import Settings, get_settings


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Set variables, then build the verifier afresh from them."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    # No stray .env: read from an empty folder.
    monkeypatch.setitem(Settings.model_config, "env_file", None)

    def build(**env: str) -> TokenVerifier:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return build_verifier(get_settings(), backend="http://127.0.0.1:8123")

    yield build
    get_settings.cache_clear()


def test_embedded_provider_by_default(configure) -> None:
    verifier = configure()
    assert verifier.issuer == "http://127.0.0.1:8123/idp"
    assert verifier.audience == get_settings().auth_audience
    assert verifier.algorithms == frozenset({"RS256"})
    assert verifier.require_at_jwt is True  # the embedded provider sets typ at+jwt
    assert verifier.client_id == get_settings().auth_client_id
    assert verifier.keys.cooldown >= 30
    assert verifier.cache_size == 4096
    assert verifier.max_token_lifetime == 0  # no ceiling unless asked for


def test_auth0_domain(configure) -> None:
    verifier = configure(AUTH0_DOMAIN="tenant.eu.auth0.com", AUTH_AUDIENCE="https://api.example")
    assert verifier.issuer == "https://tenant.eu.auth0.com/"
    assert verifier.audience == "https://api.example"
    assert verifier.require_at_jwt is False  # Auth0's access tokens say typ JWT


def test_any_issuer_with_its_options(configure) -> None:
    verifier = configure(
        AUTH_ISSUER="https://id.example/realms/x",
        AUTH_AUDIENCE="api://pingapp",
        AUTH_ALGORITHMS="RS256, PS256",
        AUTH_LEEWAY="5",
        AUTH_REQUIRE_AT_JWT="true",
        AUTH_TOKEN_CACHE_SIZE="0",
        AUTH_MAX_TOKEN_LIFETIME="86400",
    )
    assert verifier.issuer == "https://id.example/realms/x"
    assert verifier.algorithms == frozenset({"RS256", "PS256"})
    assert verifier.leeway == 5
    assert verifier.require_at_jwt is True
    assert verifier.cache_size == 0
    assert verifier.max_token_lifetime == 86_400


def test_no_audience_is_an_error(configure) -> None:
    with pytest.raises(NotConfigured, match="AUTH_AUDIENCE"):
        configure(AUTH_AUDIENCE="")


async def test_without_an_audience_the_api_refuses_tokens_without_a_500(
    configure, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(NotConfigured):
        configure(AUTH_AUDIENCE="")
    api = create_api(cors_origins=[])  # the default verifier, as pingapp mounts it
    transport = httpx2.ASGITransport(app=api)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/private", headers={"Authorization": "Bearer a.b.c"})
        assert response.status_code == 401
        assert (await client.get("/public")).status_code == 200
    assert "AUTH_AUDIENCE" in caplog.text


async def test_without_an_audience_the_schema_is_still_served(configure) -> None:
    with pytest.raises(NotConfigured):
        configure(AUTH_AUDIENCE="")
    transport = httpx2.ASGITransport(app=create_api(cors_origins=[]))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert "/private" in response.json()["paths"]
