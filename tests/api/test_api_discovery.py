"""The API's discovery: single-flight with a failure cooldown (docs/security.md item 39),
and only a document that names our issuer and https endpoints (item 40).

The API is served over real HTTP (granian's embedded server on 127.0.0.1) and so
is the issuer; the calls that reach the issuer are counted there. Time moves
only on the fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from cryptography.fernet import Fernet

from pingapp.api import create_api
from pingapp.api.verifier import TokenVerifier
from pingapp.context import build_context
from pingapp.oidc.errors import LoginError
from pingapp.oidc.session import Vault
from pingapp.oidc.store import DiskStore
from pingapp.settings import Settings
from tests.support.api import AUDIENCE, CLIENT_ID, bearer, challenge, make_api, serve
from tests.support.clock import FakeClock
from tests.support.issuers import Issuer, Minter, Server


@pytest.fixture
async def api(verifier: TokenVerifier) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the API over real HTTP."""
    async with serve(make_api(verifier)) as url, httpx2.AsyncClient(base_url=url) as client:
        yield client


async def schemas(api: httpx2.AsyncClient, count: int) -> list[dict]:
    responses = await asyncio.gather(*(api.get("/openapi.json") for _ in range(count)))
    assert {response.status_code for response in responses} == {200}
    return [response.json() for response in responses]


def authorization_url(schema: dict) -> str:
    flows = schema["components"]["securitySchemes"]["OAuth2"]["flows"]
    return flows["authorizationCode"]["authorizationUrl"]


async def test_with_the_issuer_down_a_flood_of_schema_requests_costs_one_discovery_call(
    api: httpx2.AsyncClient, issuer: Issuer, verifier: TokenVerifier, clock: FakeClock
) -> None:
    issuer.discovery_status = 503
    for schema in await schemas(api, 50):
        assert "/private" in schema["paths"]  # still served, without the provider's URLs
        assert authorization_url(schema) == "/authorize"
    assert issuer.discovery_fetches == 1
    # Within the cooldown: no call at all.
    clock.advance(verifier.failure_retry - 1)
    await schemas(api, 50)
    assert issuer.discovery_fetches == 1
    # After it, one call for the next flood.
    clock.advance(2)
    await schemas(api, 50)
    assert issuer.discovery_fetches == 2
    # The issuer is back: after the cooldown the schema names its endpoints.
    issuer.discovery_status = 200
    clock.advance(verifier.failure_retry + 1)
    [schema] = await schemas(api, 1)
    assert authorization_url(schema) == f"{issuer.url}/authorize"
    assert issuer.discovery_fetches == 3
    await schemas(api, 50)  # and it is not fetched again
    assert issuer.discovery_fetches == 3


async def test_with_the_issuer_unreachable_a_flood_costs_one_connection_attempt(
    api: httpx2.AsyncClient, server: Server, verifier: TokenVerifier
) -> None:
    server.stop()
    await schemas(api, 50)
    assert verifier.discovery_fetches == 1


async def test_tokens_during_a_discovery_outage_cost_one_call_too(
    api: httpx2.AsyncClient, issuer: Issuer, mint: Minter
) -> None:
    issuer.discovery_status = 503
    tokens = [mint.token() for _ in range(20)]
    answers = await asyncio.gather(*(api.get("/private", headers=bearer(t)) for t in tokens))
    assert {answer.status_code for answer in answers} == {401}
    assert issuer.discovery_fetches == 1
    assert issuer.jwks_fetches == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jwks_uri", "http://keys.example.test/jwks.json"),
        ("authorization_endpoint", "http://idp.example.test/authorize"),
        ("token_endpoint", "http://idp.example.test/token"),
        ("end_session_endpoint", "http://idp.example.test/logout"),
        ("userinfo_endpoint", "ftp://idp.example.test/me"),
        ("revocation_endpoint", ["https://idp.example.test/revoke"]),
    ],
)
async def test_a_document_with_an_insecure_endpoint_is_not_used(
    api: httpx2.AsyncClient, issuer: Issuer, mint: Minter, field: str, value: object
) -> None:
    issuer.overrides = {field: value}
    [schema] = await schemas(api, 1)
    assert "idp.example.test" not in str(schema)
    assert "keys.example.test" not in str(schema)
    response = await api.get("/private", headers=bearer(mint.token()))
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"
    assert issuer.jwks_fetches == 0  # no key was fetched from it


async def test_a_document_naming_another_issuer_is_not_used(
    api: httpx2.AsyncClient, issuer: Issuer, mint: Minter
) -> None:
    issuer.overrides = {"issuer": issuer.url + "/other"}
    [schema] = await schemas(api, 1)
    assert authorization_url(schema) == "/authorize"
    assert (await api.get("/private", headers=bearer(mint.token()))).status_code == 401
    assert issuer.jwks_fetches == 0


async def test_loopback_http_endpoints_are_fine(
    api: httpx2.AsyncClient, issuer: Issuer, mint: Minter
) -> None:
    issuer.overrides = {"end_session_endpoint": "http://localhost:9/logout"}
    [schema] = await schemas(api, 1)
    assert authorization_url(schema) == f"{issuer.url}/authorize"
    assert (await api.get("/private", headers=bearer(mint.token()))).status_code == 200


async def test_the_apps_api_shares_the_sign_ins_discovery_and_its_cooldown(
    issuer: Issuer, clock: FakeClock, tmp_path: Path
) -> None:
    """One issuer, one discovery and one key store (`pingapp.context`): with the issuer
    down, the API and the sign-in together cost one call per AUTH_FAILURE_COOLDOWN."""
    settings = Settings(
        auth_issuer=issuer.url,
        auth_audience=AUDIENCE,
        auth_client_id=CLIENT_ID,
        auth_failure_cooldown=42,
        _env_file=None,  # pyright: ignore[reportCallIssue]
    )
    vault = Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=600)
    async with httpx2.AsyncClient() as client:
        ctx = build_context(
            client,
            settings=settings,
            vault=vault,
            backend="http://127.0.0.1:8123",
            frontend="http://localhost:3000",
            redis_url="",
            monotonic=clock.monotonic,
        )
        assert ctx.verifier is not None
        assert ctx.verifier.discovery is ctx.oidc.discovery
        assert ctx.verifier.keys is ctx.oidc.keys
        api = create_api(verifier=lambda: ctx.verifier, cors_origins=[])
        transport = httpx2.ASGITransport(app=api)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as caller:
            issuer.discovery_status = 503
            assert (await caller.get("/private", headers=bearer("a.b.c"))).status_code == 401
            await schemas(caller, 5)
            with pytest.raises(LoginError):
                await ctx.oidc.metadata()  # the sign-in gets the same remembered failure
            assert issuer.discovery_fetches == 1
            clock.advance(41)  # not the API's former fixed 5 s: the setting's 42
            await schemas(caller, 5)
            assert issuer.discovery_fetches == 1
            clock.advance(2)
            await schemas(caller, 5)
            assert issuer.discovery_fetches == 2
