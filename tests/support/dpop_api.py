"""The API with DPoP (RFC 9449): its policy on a test's clock, a client for it, and
`Authorization: DPoP` headers with a fresh proof."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from pingapp.api import DPoPPolicy, create_api
from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import DPoPKey, MemoryReplayCache, make_proof
from tests.support.api import FRONTEND
from tests.support.clock import FakeClock

#: The URL the DPoP tests' clients call, and the API's public URL behind the "proxy".
DPOP_BASE = "http://127.0.0.1"
PUBLIC_API = "https://api.example.test/api"


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
