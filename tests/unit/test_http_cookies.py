"""The shared client keeps no cookies (docs/security.md item 32).

The client is shared by every user of the backend: a `Set-Cookie` one upstream
sends during one user's call must never be sent on a later call, whoever makes
it. Checked over real HTTP (a small server on 127.0.0.1) and through the
in-process mount that answers the backend's own origin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from pingapp.context import serve_context
from pingapp.oidc.session import Vault
from pingapp.oidc.store import DiskStore
from pingapp.outbound.http import NoCookieJar, TokenAuth, make_client
from pingapp.settings import Settings

OWN_ORIGIN = "http://localhost:8000"


class CookieServer(BaseHTTPRequestHandler):
    """`/set` sets a cookie, `/redirect` sets one and redirects to `/echo`,
    `/echo` answers with the Cookie header it received (or "")."""

    def do_GET(self) -> None:
        if self.path == "/set":
            self.answer(200, b"set", {"Set-Cookie": "sid=alice-session; Path=/"})
        elif self.path == "/redirect":
            self.answer(302, b"", {"Set-Cookie": "hop=1; Path=/", "Location": "/echo"})
        elif self.path == "/echo":
            self.answer(200, self.headers.get("Cookie", "").encode(), {})
        else:
            self.answer(404, b"", {})

    def answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def upstream() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1; yields its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CookieServer)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def own_backend() -> Starlette:
    """The same three routes, as an ASGI app served in-process."""

    async def set_cookie(_: Request) -> JSONResponse:
        response = JSONResponse("set")
        response.set_cookie("sid", "alice-session")
        return response

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse(request.headers.get("cookie", ""))

    async def redirect(_: Request) -> RedirectResponse:
        response = RedirectResponse("/echo", status_code=302)
        response.set_cookie("hop", "1")
        return response

    return Starlette(
        routes=[Route("/set", set_cookie), Route("/echo", echo), Route("/redirect", redirect)]
    )


async def no_token(rejected: str | None) -> str | None:
    del rejected
    return None


async def test_a_cookie_set_by_an_upstream_is_not_sent_on_the_next_call(upstream: str) -> None:
    async with make_client() as client:
        first = await client.get(f"{upstream}/set")  # "alice's" call
        assert first.headers["set-cookie"].startswith("sid=")
        second = await client.get(f"{upstream}/echo")  # anyone's later call
        assert second.text == ""
        assert len(client.cookies) == 0


async def test_a_cookie_set_on_a_redirect_is_not_sent_to_the_next_hop(upstream: str) -> None:
    async with make_client() as client:
        answer = await client.get(f"{upstream}/redirect", auth=TokenAuth(no_token, []))
        assert answer.url.path == "/echo"
        assert answer.text == ""


async def test_a_cookie_put_on_the_client_directly_is_not_kept_either(upstream: str) -> None:
    async with make_client() as client:
        client.cookies.set("sid", "planted", domain="127.0.0.1")
        assert (await client.get(f"{upstream}/echo")).text == ""


async def test_the_in_process_origin_gets_no_cookie_either(tmp_path: Path) -> None:
    vault = Vault(DiskStore(tmp_path / "sessions"), Fernet.generate_key(), max_age=60)
    in_process = {OWN_ORIGIN: own_backend()}
    async with serve_context(in_process=in_process, settings=Settings(), vault=vault) as ctx:
        client = ctx.client
        assert isinstance(client.cookies.jar, NoCookieJar)
        first = await client.get(f"{OWN_ORIGIN}/set")
        assert "sid=alice-session" in first.headers["set-cookie"]
        assert (await client.get(f"{OWN_ORIGIN}/echo")).json() == ""
        hop = await client.get(f"{OWN_ORIGIN}/redirect", auth=TokenAuth(no_token, []))
        assert hop.json() == ""


async def test_a_cookie_given_per_request_still_goes_with_that_request_only(
    upstream: str,
) -> None:
    # A caller that needs a cookie for one call says so in that call's headers.
    async with make_client() as client:
        answer = await client.get(f"{upstream}/echo", headers={"Cookie": "mine=1"})
        assert answer.text == "mine=1"
        assert (await client.get(f"{upstream}/echo")).text == ""


def test_the_shared_client_cannot_be_given_a_cookie_jar() -> None:
    with pytest.raises(ValueError, match="no cookies"):
        make_client(cookies=httpx2.Cookies())
