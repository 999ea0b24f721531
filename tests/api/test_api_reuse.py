"""The dependencies serve other people's routes too, in any FastAPI app."""

from __future__ import annotations

from typing import Annotated

import httpx2
from fastapi import APIRouter, FastAPI

from pingapp.api.errors import install_error_handlers
from pingapp.api.security import VerifiedToken, require_scopes
from pingapp.api.verifier import AccessToken, TokenVerifier
from tests.support.api import bearer, challenge
from tests.support.issuers import Minter

router = APIRouter(prefix="/things", tags=["things"])


@router.get("/mine")
async def mine(token: VerifiedToken) -> dict[str, object]:
    return {"sub": token.subject, "scopes": sorted(token.scopes)}


@router.post("/", dependencies=[require_scopes("write:things", "read:messages")])
async def create() -> dict[str, str]:
    return {"created": "yes"}


@router.get("/both")
async def both(
    token: VerifiedToken, scoped: Annotated[AccessToken, require_scopes("read:messages")]
) -> dict[str, bool]:
    return {"same": token.claims == scoped.claims}


def app_with(verifier: TokenVerifier, *, rfc6750_bodies: bool) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = verifier
    if rfc6750_bodies:
        install_error_handlers(app)
    app.include_router(router)
    return app


async def test_claims_and_scopes_in_another_app(verifier: TokenVerifier, mint: Minter) -> None:
    transport = httpx2.ASGITransport(app=app_with(verifier, rfc6750_bodies=True))
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        token = mint.token(scope="openid read:messages")
        mine = await client.get("/things/mine", headers=bearer(token))
        assert mine.json() == {"sub": "auth0|user-1", "scopes": ["openid", "read:messages"]}
        assert (await client.get("/things/both", headers=bearer(token))).json() == {"same": True}

        refused = await client.post("/things/", headers=bearer(token))
        assert refused.status_code == 403
        assert challenge(refused)["scope"] == "write:things"
        assert refused.json()["error"] == "insufficient_scope"
        full = bearer(mint.token(scope="write:things read:messages"))
        assert (await client.post("/things/", headers=full)).json() == {"created": "yes"}


async def test_without_the_handlers_the_status_and_challenge_still_hold(
    verifier: TokenVerifier, mint: Minter
) -> None:
    transport = httpx2.ASGITransport(app=app_with(verifier, rfc6750_bodies=False))
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        missing = await client.get("/things/mine")
        assert missing.status_code == 401
        assert "error" not in challenge(missing)
        bad = await client.get("/things/mine", headers=bearer(mint.token(aud="other")))
        assert bad.status_code == 401
        assert challenge(bad)["error"] == "invalid_token"


def test_the_openapi_schema_lists_each_routes_scopes(verifier: TokenVerifier) -> None:
    schema = app_with(verifier, rfc6750_bodies=True).openapi()
    assert schema["paths"]["/things/mine"]["get"]["security"] == [{"OAuth2": []}]
    create = schema["paths"]["/things/"]["post"]["security"]
    assert create == [{"OAuth2": ["write:things", "read:messages"]}]
