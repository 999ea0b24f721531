"""The process's one shared HTTP client.

One `httpx.AsyncClient` per backend process, opened and closed by a Reflex
lifespan task, so every outbound call (the API, the provider) reuses the same
connection pool instead of paying for a new TCP/TLS connection per call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from pingapp.settings import get_settings

_client: httpx.AsyncClient | None = None


def make_client(**kwargs: object) -> httpx.AsyncClient:
    """A client with pingapp's explicit timeouts and limits."""
    total = get_settings().http_timeout
    options: dict = {
        # connect gets a shorter budget: a refused or unroutable host should
        # fail fast, a slow answer may take the whole budget.
        "timeout": httpx.Timeout(total, connect=min(total, 5.0)),
        "limits": httpx.Limits(max_connections=200, max_keepalive_connections=50),
        # Redirects are followed by the caller's auth flow, hop by hop.
        "follow_redirects": False,
        "headers": {"User-Agent": "pingapp"},
    }
    options.update(kwargs)
    return httpx.AsyncClient(**options)


def shared_client() -> httpx.AsyncClient:
    """The shared client; only available while the backend is running."""
    if _client is None:
        msg = "the shared HTTP client is not open (is the backend's lifespan running?)"
        raise RuntimeError(msg)
    return _client


@contextlib.asynccontextmanager
async def use_client(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Install `client` as the shared client for the duration of the block."""
    global _client  # the one process-wide client, by design
    previous, _client = _client, client
    try:
        async with client:
            yield client
    finally:
        _client = previous


@contextlib.asynccontextmanager
async def http_client_lifespan() -> AsyncIterator[None]:
    """Reflex lifespan task: open the shared client at start, close it at stop."""
    async with use_client(make_client()):
        yield
