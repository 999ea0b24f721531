"""The embedded provider on its own, behind a fault switch, for the fault tests.

`granian --interface asgi --factory tests.faults.provider:build`, configured by
the environment the fixture sets. `GET /_fault?path=/idp/token&delay=5` makes
every request whose path starts with `path` wait `delay` seconds before it is
served (`delay=0` ends that); a provider that is *down* is this process stopped.
`GET /_fault?expires_in=-60` makes the token endpoint's answers say that number
(`expires_in=` ends that): tokens the app holds as expired, with no wait.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from pingapp.devidp import create_idp
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.models import Client
from pingapp.devidp.storage import store_for

AUDIENCE = "urn:pingapp:api"
#: Under the app's refresh margin (30 s): every secured ping refreshes first,
#: while the token itself stays valid long enough for a test.
ACCESS_TOKEN_TTL = 25

_delays: dict[str, float] = {}
#: The token endpoint's `expires_in`, replacing the provider's own (None: not replaced).
_expires_in: list[int | None] = [None]


async def set_fault(request: Request) -> PlainTextResponse:
    if "expires_in" in request.query_params:
        value = request.query_params["expires_in"]
        _expires_in[0] = int(value) if value else None
        return PlainTextResponse(repr(_expires_in[0]))
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
            if path == "/idp/token" and _expires_in[0] is not None:
                await self.app(scope, receive, TokenLifetime(send, _expires_in[0]))
                return
        await self.app(scope, receive, send)


class TokenLifetime:
    """An ASGI `send` that gives a token answer's JSON another `expires_in`."""

    def __init__(self, send: Send, expires_in: int) -> None:
        self.send = send
        self.expires_in = expires_in
        self.start: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
            return
        if message["type"] != "http.response.body" or self.start is None:
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return
        data = json.loads(self.body)
        if isinstance(data, dict) and "expires_in" in data:
            data["expires_in"] = self.expires_in
            self.body = json.dumps(data).encode()
        headers = [(k, v) for k, v in self.start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(self.body)).encode()))
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": self.body})


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
