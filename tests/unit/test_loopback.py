"""`pingapp.web.loopback`: pages asked for under another loopback name go to the app's
origin; everything else, and every other host, is served as asked."""

from __future__ import annotations

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pingapp.web.loopback import loopback_to_origin, redirect_target

ORIGIN = "http://localhost:3000"


@pytest.mark.parametrize(
    ("host", "origin", "expected"),
    [
        ("127.0.0.1:3000", ORIGIN, ORIGIN + "/ping?a=1"),
        ("[::1]:3000", ORIGIN, ORIGIN + "/ping?a=1"),
        ("127.0.0.2:3000", ORIGIN, ORIGIN + "/ping?a=1"),
        ("localhost:8000", "http://127.0.0.1:8000", "http://127.0.0.1:8000/ping?a=1"),
        ("LOCALHOST:3000", ORIGIN, None),  # the origin itself, in other letters
        ("localhost:3000", ORIGIN, None),
        ("127.0.0.1:3001", ORIGIN, None),  # another port: another app
        ("example.test:3000", ORIGIN, None),  # not this machine's name
        ("127.0.0.1:3000", "https://app.example.test", None),  # origin not loopback
        ("", ORIGIN, None),
        ("127.0.0.1:x", ORIGIN, None),
    ],
)
def test_redirect_target(host: str, origin: str, expected: str | None) -> None:
    assert redirect_target(host, "/ping?a=1", origin) == expected


def app() -> httpx2.AsyncClient:
    async def page(request) -> PlainTextResponse:
        return PlainTextResponse("served " + request.url.path)

    inner = Starlette(routes=[Route("/{path:path}", page, methods=["GET", "HEAD", "POST"])])
    wrapped = loopback_to_origin(inner, ORIGIN, passthrough=("/api", "/_reflex"))
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=wrapped))


async def test_a_page_under_127_0_0_1_is_sent_to_the_origin_with_its_path() -> None:
    async with app() as client:
        answer = await client.get("http://127.0.0.1:3000/ping/%C3%A9t%C3%A9?x=%20y")
    assert answer.status_code == 308
    assert answer.headers["location"] == ORIGIN + "/ping/%C3%A9t%C3%A9?x=%20y"
    assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "http://localhost:3000/ping"),  # the origin
        ("GET", "http://127.0.0.1:3000/api/public"),  # the API answers at any name
        ("GET", "http://127.0.0.1:3000/_reflex/ping"),
        ("POST", "http://127.0.0.1:3000/ping"),  # a form post is not a page load
    ],
)
async def test_everything_else_is_served(method: str, url: str) -> None:
    async with app() as client:
        answer = await client.request(method, url)
    assert answer.status_code == 200
    assert answer.text.startswith("served /")


def test_an_origin_elsewhere_leaves_the_app_as_it_is() -> None:
    async def inner(scope, receive, send) -> None:
        del scope, receive, send

    assert loopback_to_origin(inner, "https://app.example.test", passthrough=()) is inner
