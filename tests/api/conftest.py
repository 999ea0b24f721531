"""Fixtures for the API tests: a local issuer with keys, a fake clock, a verifier,
the API app on an in-process client, and a token minter (tests/support/issuers.py,
tests/support/api.py); `challenges` reads every scheme's challenge; DPoP helpers."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from pingapp.api import DPoPPolicy, create_api
from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import DPoPKey, MemoryReplayCache, make_proof
from tests.support.api import FRONTEND, make_api, make_verifier
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


#: One challenge's scheme (a token with no `=` after it) or one `name=value` parameter.
_AUTH_PART = re.compile(r"""\s*([\w!#$%&'*+.^`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?\s*,?""")


def challenges(response: httpx2.Response) -> dict[str, dict[str, str]]:
    """Every `WWW-Authenticate` challenge, by scheme, with its parameters (unquoted)."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for value in response.headers.get_list("www-authenticate"):
        for name, quoted in _AUTH_PART.findall(value):
            if not quoted:
                current = found.setdefault(name, {})
                continue
            assert current is not None, "a parameter before any scheme"
            current[name] = re.sub(r"\\(.)", r"\1", quoted.strip('"'))
    return found


def challenge(response: httpx2.Response, scheme: str = "Bearer") -> dict[str, str]:
    """The parameters of the `WWW-Authenticate` challenge of `scheme` (checked present)."""
    found = challenges(response)
    assert scheme in found, response.headers.get("www-authenticate")
    return found[scheme]


# -- DPoP (RFC 9449) ------------------------------------------------------------------

#: The URL the DPoP tests' clients call, and the API's public URL behind the "proxy".
DPOP_BASE = "http://127.0.0.1"
PUBLIC_API = "https://api.example.test/api"


@pytest.fixture(scope="session")
def dpop_key() -> DPoPKey:
    return DPoPKey.generate()


def dpop_policy(clock: FakeClock, **options: Any) -> DPoPPolicy:
    """A policy on the test's clock, the API public at `PUBLIC_API`."""
    return DPoPPolicy(
        **{"public_url": PUBLIC_API, "clock": clock.time, "replay": MemoryReplayCache(), **options}
    )


@contextlib.asynccontextmanager
async def dpop_client(
    verifier: TokenVerifier, policy: DPoPPolicy
) -> AsyncIterator[httpx2.AsyncClient]:
    api = create_api(verifier, cors_origins=[FRONTEND], dpop=policy)
    transport = httpx2.ASGITransport(app=api)
    async with httpx2.AsyncClient(transport=transport, base_url=DPOP_BASE) as client:
        yield client


def with_proof(
    key: DPoPKey,
    token: str,
    path: str,
    clock: FakeClock,
    *,
    method: str = "GET",
    **options: Any,
) -> dict[str, str]:
    """`Authorization: DPoP <token>` and a fresh proof for `method PUBLIC_API+path`."""
    proof = make_proof(
        key, method, PUBLIC_API + path, access_token=token, now=clock.time(), **options
    )
    return {"Authorization": f"DPoP {token}", "DPoP": proof}
