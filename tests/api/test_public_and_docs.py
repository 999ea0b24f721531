"""/api/public and the OpenAPI page, through the same mount Reflex serves."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from pingapp.context import serve_context
from pingapp.pingapp import backend


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the backend, with the application context built as the app's
    lifespan builds it."""
    transport = httpx2.ASGITransport(app=backend)
    async with (
        serve_context(),
        httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        yield client


async def test_public_answers_everyone(client: httpx2.AsyncClient) -> None:
    response = await client.get("/api/public")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"message"}
    assert "public endpoint" in response.json()["message"]


async def test_docs_page_loads_its_schema_from_under_api(client: httpx2.AsyncClient) -> None:
    page = await client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/openapi.json" in page.text
    schema = (await client.get("/api/openapi.json")).json()
    assert "/public" in schema["paths"]


async def test_docs_page_uses_local_swagger_files(client: httpx2.AsyncClient) -> None:
    page = (await client.get("/api/docs")).text
    assert "cdn." not in page  # works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/docs/assets/{asset}" in page
        response = await client.get(f"/api/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000
