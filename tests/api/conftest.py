"""Fixtures for the API tests: a local issuer with keys, a fake clock, a verifier,
the API app on an in-process client, a token minter and a DPoP key. The helpers
behind them are in tests/support/ (issuers.py, api.py, dpop_api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import DPoPKey
from tests.support.api import make_api, make_verifier
from tests.support.clock import FakeClock
from tests.support.issuers import Issuer, Key, Minter, Server, new_key, start_server


@pytest.fixture(scope="session")
def keys() -> list[Key]:
    """Three keys, made once: generating RSA keys is the slow part."""
    return [new_key("key-1"), new_key("key-2"), new_key("key-3")]


@pytest.fixture
def server(keys: list[Key]) -> Iterator[Server]:
    issuer = Issuer()
    issuer.publish(keys[0])
    running = start_server(issuer)
    yield running
    running.stop()


@pytest.fixture
def issuer(server: Server) -> Issuer:
    return server.issuer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(issuer: Issuer, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    verifier = make_verifier(issuer, clock)
    yield verifier
    await verifier.aclose()


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=make_api(verifier))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def mint(issuer: Issuer, keys: list[Key], clock: FakeClock) -> Minter:
    return Minter(issuer, keys[0], clock)


@pytest.fixture(scope="session")
def dpop_key() -> DPoPKey:
    return DPoPKey.generate()
