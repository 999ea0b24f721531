"""docs/security.md item 50: a body over the limit gets 413 before the app reads or parses it.

Driven as the server drives ASGI (messages in, messages out), so the tests see how
much of a body was read. The running provider is tested over HTTP in
tests/idp/test_body_limit.py.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pingapp.web.bodylimit import MAX_BODY_BYTES, BodySizeLimit

LIMIT = 1000


class Recorder:
    """An app that reads the whole body and answers with its length."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


async def run(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, bytes, int]:
    """Send `chunks` as the body; the status, the answer and how many chunks were read."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read < len(messages):
            read += 1
            return messages[read - 1]
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, read


def length(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(n).encode())]


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    inner = Recorder()
    status, body, read = await run(BodySizeLimit(inner, LIMIT), [b"x" * 5000], length(5000))
    assert status == 413
    assert b"at most 1000 bytes" in body
    assert read == 0
    assert inner.calls == 0


async def test_an_undeclared_body_is_cut_off_at_the_limit() -> None:
    inner = Recorder()
    chunks = [b"x" * 400] * 50  # 20 kB, chunked
    status, _, read = await run(BodySizeLimit(inner, LIMIT), chunks)
    assert status == 413
    assert read == 3  # 1,200 bytes: the first chunk past the limit, then no more
    assert inner.calls == 0


async def test_a_body_that_lies_about_its_length_is_cut_off_too() -> None:
    inner = Recorder()
    status, _, read = await run(BodySizeLimit(inner, LIMIT), [b"x" * 600] * 5, length(10))
    assert status == 413
    assert read == 2
    assert inner.calls == 0


@pytest.mark.parametrize("size", [0, 1, LIMIT])
async def test_a_body_within_the_limit_reaches_the_app_whole(size: int) -> None:
    inner = Recorder()
    data = bytes(i % 251 for i in range(size))
    chunks = [data[i : i + 300] for i in range(0, size, 300)]
    status, body, _ = await run(BodySizeLimit(inner, LIMIT), chunks, length(size))
    assert (status, body) == (200, str(size).encode())
    assert inner.bodies == [data]


async def test_a_client_that_leaves_mid_body_gets_no_answer_and_no_app() -> None:
    inner = Recorder()
    limit = BodySizeLimit(inner, LIMIT)
    scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    incoming = iter(
        [{"type": "http.request", "body": b"x", "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[Any] = []

    async def receive() -> Any:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(message)

    await limit(scope, receive, send)
    assert sent == []
    assert inner.calls == 0


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def nothing(*_: Any) -> Any:
        raise AssertionError("the middleware read or sent a message")

    for kind in ("websocket", "lifespan"):
        await BodySizeLimit(inner, 0)({"type": kind}, nothing, nothing)
    assert seen == ["websocket", "lifespan"]


async def test_a_form_endpoint_behind_it_answers_413_not_500() -> None:
    """Starlette's own form parser never sees the body (it would take up to 1,000 fields
    of any size)."""

    async def form(request: Request) -> PlainTextResponse:
        async with request.form() as data:
            return PlainTextResponse(str(len(data)))

    app = Starlette(
        routes=[Route("/form", form, methods=["POST"])],
        middleware=[Middleware(BodySizeLimit)],
    )
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
        big = await client.post("/form", data={"a": "x" * MAX_BODY_BYTES})
        assert big.status_code == 413
        small = await client.post("/form", data={"a": "1", "b": "2"})
        assert (small.status_code, small.text) == (200, "2")


def test_the_default_limit_and_no_negative_one() -> None:
    assert BodySizeLimit(Recorder()).max_bytes == MAX_BODY_BYTES
    with pytest.raises(ValueError, match="negative"):
        BodySizeLimit(Recorder(), -1)
