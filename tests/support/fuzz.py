"""What the API's property-based tests share: Hypothesis settings, sync calls into
the API app on one event loop, and strategies for header text and JSON values."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Client:
    """Sync calls into the API app on one event loop kept for the whole module."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: httpx2.AsyncClient) -> None:
        self.loop = loop
        self.client = client

    def get(self, path: str, **options: Any) -> httpx2.Response:
        return self.loop.run_until_complete(self.client.get(path, **options))


printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
