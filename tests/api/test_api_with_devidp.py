"""The API against the embedded provider's real tokens (pingapp/devidp, served by granian).

The other API tests mint their own tokens; here the tokens come from a full
authorization code + PKCE sign-in at the embedded provider, so the two halves
are checked to agree: RFC 9068 access tokens accepted, ID tokens refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pingapp.api.verifier import TokenVerifier
from tests.idp.flow import login
from tests.idp.serve import AUDIENCE, OTHER_AUDIENCE
from tests.support.api import bearer, challenge, make_api
from tests.support.idp import describe, serve, stop


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    key_dir: Path = tmp_path_factory.mktemp("api-idp") / "keys"
    base, process = serve(key_dir)
    try:
        yield describe(base)
    finally:
        stop(process)


@pytest.fixture
async def api(provider: dict[str, Any]) -> AsyncIterator[httpx2.AsyncClient]:
    verifier = TokenVerifier(
        issuer=provider["issuer"], audience=AUDIENCE, client_id="pingapp", require_at_jwt=True
    )
    transport = httpx2.ASGITransport(app=make_api(verifier))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
    await verifier.aclose()


async def test_a_signed_in_users_access_token_opens_both_routes(
    provider: dict[str, Any], api: httpx2.AsyncClient
) -> None:
    token = login(provider, user="alice").token
    for path in ("/private", "/private-scoped"):
        response = await api.get(path, headers=bearer(token["access_token"]))
        assert response.status_code == 200, response.text


async def test_its_id_token_is_refused(provider: dict[str, Any], api: httpx2.AsyncClient) -> None:
    token = login(provider, user="alice").token
    response = await api.get("/private", headers=bearer(token["id_token"]))
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"


async def test_without_consent_to_read_messages_the_scoped_route_is_403(
    provider: dict[str, Any], api: httpx2.AsyncClient
) -> None:
    token = login(provider, user="carol", scopes=["openid", "profile"]).token
    assert "read:messages" not in token.get("scope", "").split()
    access = bearer(token["access_token"])
    assert (await api.get("/private", headers=access)).status_code == 200
    response = await api.get("/private-scoped", headers=access)
    assert response.status_code == 403
    assert challenge(response)["scope"] == "read:messages"


async def test_a_token_for_another_api_is_refused(
    provider: dict[str, Any], api: httpx2.AsyncClient
) -> None:
    token = login(provider, user="alice", audience=OTHER_AUDIENCE).token
    response = await api.get("/private", headers=bearer(token["access_token"]))
    assert response.status_code == 401
