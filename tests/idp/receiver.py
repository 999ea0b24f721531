"""A relying party's back-channel logout endpoint, for the provider's tests:
`granian --factory tests.idp.receiver:build`.

`POST /bcl/{name}` records what it got (content type and form) and answers 200;
names starting with `down` answer 503 (a receiver that is down), `refuse` 400
(a token the client refused), `moved` a 307 to `/bcl/followed`, `slow` 200 after
`SLOW_SECONDS`. `GET /_received` lists every POST so far.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: How long a `slow` receiver takes to answer.
SLOW_SECONDS = 3.0

RECEIVED: list[dict[str, Any]] = []


async def receive(request: Request) -> Response:
    name = request.path_params["name"]
    async with request.form() as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    RECEIVED.append(
        {
            "name": name,
            "content_type": request.headers.get("content-type", ""),
            "form": fields,
        }
    )
    if name.startswith("down"):
        return Response(status_code=503)
    if name.startswith("moved"):
        return Response(status_code=307, headers={"Location": "/bcl/followed"})
    if name.startswith("refuse"):
        return JSONResponse({"error": "invalid_request"}, status_code=400)
    if name.startswith("slow"):
        await asyncio.sleep(SLOW_SECONDS)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def received(request: Request) -> JSONResponse:
    return JSONResponse(RECEIVED)


def build() -> Starlette:
    return Starlette(
        routes=[
            Route("/bcl/{name}", receive, methods=["POST"]),
            Route("/_received", received),
        ]
    )
