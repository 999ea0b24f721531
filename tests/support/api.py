"""The API under test: a verifier and the FastAPI app for a local issuer, served over
real HTTP in the test's own event loop (so it shares the fake clock)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from fastapi import FastAPI
from granian.constants import Interfaces
from granian.server.embed import Server as EmbeddedServer
from starlette.types import ASGIApp

from pingapp.api import create_api
from pingapp.api.verifier import TokenVerifier
from tests.support.clock import FakeClock
from tests.support.issuers import AUDIENCE, CLIENT_ID, Issuer
from tests.support.net import NotUp, free_port

FRONTEND = "http://127.0.0.1:3999"


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """`app` over real HTTP on 127.0.0.1, in this event loop (granian's embedded
    server, without lifespan); yields its base URL once it answers."""
    port = free_port()
    server = EmbeddedServer(
        app, address="127.0.0.1", port=port, interface=Interfaces.ASGINL, log_enabled=False
    )
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx2.AsyncClient() as probe:
            for _ in range(3000):  # until it listens; a readiness wait, not a timing
                try:
                    await probe.get(url + "/")
                    break
                except httpx2.TransportError:
                    assert not task.done(), "the embedded server stopped"
                    await asyncio.sleep(0.01)
            else:
                raise NotUp(f"nothing answers at {url}")
        yield url
    finally:
        server.stop()
        await task


def make_verifier(idp: Issuer, clock: FakeClock, **options: Any) -> TokenVerifier:
    settings: dict[str, Any] = {
        "issuer": idp.url,
        "audience": AUDIENCE,
        "client_id": CLIENT_ID,
        "fetch_timeout": 1.0,
        "clock": clock.time,
        "monotonic": clock.monotonic,
        **options,
    }
    return TokenVerifier(**settings)


def make_api(verifier: TokenVerifier) -> FastAPI:
    return create_api(verifier, cors_origins=[FRONTEND])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
