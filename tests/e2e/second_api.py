"""A second API server for the browser tests: pingapp's API app on another port,
validating tokens itself, and noting which requests arrived with a token.

Run by the tests as `granian --interface asgi tests.e2e.second_api:app`, with
AUTH_ISSUER naming the app's embedded provider; `GET /seen` lists what arrived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from pingapp.api import create_api

app = create_api()
#: "<path> token" or "<path> none" for every request, in order.
seen: list[str] = []


@app.get("/seen", include_in_schema=False)
async def list_seen() -> list[str]:
    return seen


@app.middleware("http")
async def note_authorization(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.url.path != "/seen":
        carried = "token" if "authorization" in request.headers else "none"
        seen.append(f"{request.url.path} {carried}")
    return await call_next(request)
