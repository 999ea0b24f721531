"""The application context: built and installed by the lifespan, one accessor,
the shared client with pingapp's own timeouts, this backend answered in-process."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from pingapp.context import context, serve_context
from pingapp.oidc.session import Vault
from pingapp.oidc.store import DiskStore
from pingapp.settings import Settings


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=86_400)


def test_the_context_is_unavailable_outside_the_lifespan() -> None:
    with pytest.raises(RuntimeError, match="lifespan"):
        context()


@pytest.mark.parametrize(("budget", "connect"), [(7.0, 5.0), (3.0, 3.0)])
async def test_the_lifespan_opens_one_client_with_pingapps_timeouts_and_closes_it(
    vault: Vault, budget: float, connect: float
) -> None:
    settings = Settings(http_timeout=budget)
    async with serve_context(settings=settings, vault=vault) as built:
        assert context() is built
        client = context().client
        assert client is context().client
        # HTTP_TIMEOUT for the whole call; connecting gets at most 5 s of it.
        assert client.timeout == httpx2.Timeout(budget, connect=connect)
        assert client.timeout != httpx2.AsyncClient().timeout  # not httpx's defaults
        assert not client.follow_redirects
        assert context().oidc.http is client
    assert client.is_closed
    with pytest.raises(RuntimeError):
        context()


async def test_this_backends_own_origin_is_answered_in_process(vault: Vault) -> None:
    async def public(_) -> JSONResponse:
        return JSONResponse({"message": "in process"})

    own = Starlette(routes=[Route("/api/public", public)])
    in_process = {"http://localhost:8000": own}
    async with serve_context(in_process=in_process, settings=Settings(), vault=vault):
        client = context().client
        answer = await client.get("http://localhost:8000/api/public")
        assert answer.json() == {"message": "in process"}
        # Any other origin still goes over the network (here: nobody listens).
        with pytest.raises(httpx2.ConnectError):
            await client.get("http://127.0.0.1:9/api/public")
