"""A request body larger than a limit is refused before anything parses it (docs/security.md
item 50): `413 Content Too Large`, never a 500.

`BodySizeLimit` is ASGI middleware for endpoints that take small forms (the sign-in
hop, the embedded provider). It answers 413 at once when `Content-Length` announces
more than `max_bytes`, without reading any of it; otherwise it reads the body as it
arrives (chunked, or with no length given) and stops at the first byte past the
limit with the same 413. Only a body within the limit reaches the app, which gets it
whole, as if it came straight from the server; websockets and lifespan pass through.

A primitive: it imports nothing of the app.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "BodySizeLimit"]

#: The largest request body the form endpoints take: a token, PAR or sign-in form is
#: a few kilobytes at most.
MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit:
    """ASGI middleware: 413 for a request body of more than `max_bytes` bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        if max_bytes < 0:
            msg = f"max_bytes must not be negative, got {max_bytes}"
            raise ValueError(msg)
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if declared_length(scope) > self.max_bytes:
            await self.refuse(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self.refuse(send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def refuse(self, send: Send) -> None:
        text = f"Request body too large: at most {self.max_bytes} bytes.\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                    (b"cache-control", b"no-store"),
                    # The rest of the body is never read: this connection cannot
                    # carry another request.
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})


def declared_length(scope: Scope) -> int:
    """The largest `Content-Length` the request states (0 when none, or not a number:
    the server refuses those itself)."""
    lengths = [
        int(value)
        for name, value in scope.get("headers", ())
        if name == b"content-length" and value.strip().isdigit()
    ]
    return max(lengths, default=0)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read so far in one message, then the server's."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
