"""The embedded provider on its own, behind a fault switch, for the fault tests.

`granian --interface asgi --factory tests.faults.provider:build`, configured by
the environment the fixture sets. `GET /_fault?path=/idp/token&delay=5` makes
every request whose path starts with `path` wait `delay` seconds before it is
served (`delay=0` ends that); a provider that is *down* is this process stopped.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from pingapp.devidp import create_idp
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.models import Client
from pingapp.devidp.storage import store_for

AUDIENCE = "urn:pingapp:api"
#: Under the app's refresh margin (30 s): every secured ping refreshes first,
#: while the token itself stays valid long enough for a test.
ACCESS_TOKEN_TTL = 25

_delays: dict[str, float] = {}


async def set_fault(request: Request) -> PlainTextResponse:
    path = request.query_params.get("path", "/")
    delay = float(request.query_params.get("delay", "0"))
    if delay > 0:
        _delays[path] = delay
    else:
        _delays.pop(path, None)
    return PlainTextResponse(repr(_delays))


class SlowDown:
    """ASGI middleware: hold matching requests for their configured delay."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            delay = max((d for p, d in _delays.items() if path.startswith(p)), default=0.0)
            if delay:
                await asyncio.sleep(delay)
        await self.app(scope, receive, send)


def build() -> SlowDown:
    base = os.environ["FAULTS_IDP_BASE"]
    apps = os.environ["FAULTS_APP_URLS"].split(",")
    settings = IdpSettings(
        users=["alice:alice", "bob:bob"],
        key_dir=Path(os.environ["FAULTS_IDP_KEY_DIR"]),
        access_token_ttl=ACCESS_TOKEN_TTL,
    )
    client = Client(
        "pingapp",
        tuple(f"{url}/callback" for url in apps),
        tuple(f"{url}/" for url in apps),
    )
    idp = create_idp(
        issuer=f"{base}/idp",
        settings=settings,
        clients=[client],
        audiences=[AUDIENCE],
        store=store_for(None),
    )
    return SlowDown(Starlette(routes=[Route("/_fault", set_fault), Mount("/idp", app=idp)]))
