"""TokenAuth and Allowlist: exactly which requests carry `Authorization`.

docs/security.md item 21: tokens go only to allow-listed origins (exact scheme, host
and port, optionally a path prefix), re-checked on every redirect hop. Every
request the client sends is recorded by a MockTransport with the Authorization
header it carried at that moment; no host named here is ever contacted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import pytest

from pingapp.outbound.allowlist import AllowedTarget, Allowlist
from pingapp.outbound.http import TokenAuth, make_client

ALLOWED = [
    "https://api.example.test",
    "https://paths.example.test/v1",
    "http://127.0.0.1:8000",
]
TOKEN = "tok-1"
NEW_TOKEN = "tok-2"
INVALID_TOKEN = {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'}


@dataclass
class Sent:
    """One request as it left the client."""

    method: str
    url: str
    authorization: str | None
    body: bytes


@dataclass
class Server:
    """A MockTransport handler: answers by URL, records every request.

    `answers` maps a URL to the (status, headers) answers it gives in turn; the
    last one repeats. Any other URL answers 200.
    """

    answers: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append(
            Sent(
                request.method,
                str(request.url),
                request.headers.get("Authorization"),
                request.content,
            )
        )
        queue = self.answers.get(str(request.url), [(200, {})])
        status, headers = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx2.Response(status, headers=headers, text="answer")

    @property
    def authorizations(self) -> list[tuple[str, str | None]]:
        return [(s.url, s.authorization) for s in self.sent]


class WireTransport(httpx2.AsyncBaseTransport):
    """Reads the request body from its stream, as a network transport does.

    MockTransport buffers the body first, which would hide a body that cannot
    be sent twice (a one-shot async stream on a 307 hop or the retry).
    """

    def __init__(self, server: Server) -> None:
        self.server = server

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        body = b"".join([chunk async for chunk in request.stream])
        return self.server(
            httpx2.Request(request.method, request.url, headers=request.headers, content=body)
        )


@dataclass
class Session:
    """Stands in for the user's session: counts token reads and refreshes."""

    token: str | None = TOKEN
    new_token: str | None = NEW_TOKEN
    reads: int = 0
    refreshes: int = 0

    #: The tokens the server rejected, as `TokenAuth` reported them.
    rejected: list[str] = field(default_factory=list)

    async def provide(self, rejected: str | None) -> str | None:
        """The token provider: the current token, or a new one for a rejected one."""
        if rejected is None:
            self.reads += 1
            return self.token
        self.rejected.append(rejected)
        self.refreshes += 1
        self.token = self.new_token
        return self.new_token

    def auth(self, allowlist: list[str] | None = None, max_redirects: int = 5) -> TokenAuth:
        allowed = ALLOWED if allowlist is None else allowlist
        return TokenAuth(self.provide, allowed, max_redirects=max_redirects)


def redirect(location: str, status: int = 302) -> list[tuple[int, dict[str, str]]]:
    return [(status, {"Location": location})]


async def call(
    server: Server,
    url: str,
    auth: httpx2.Auth,
    method: str = "GET",
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    follow_redirects: bool = False,
) -> httpx2.Response:
    """One call through pingapp's client (the shared one's options: no redirects of its
    own, no cookies), answered by `server`."""
    async with make_client(transport=httpx2.MockTransport(server)) as client:
        return await client.request(
            method,
            url,
            auth=auth,
            content=content,
            headers=headers,
            follow_redirects=follow_redirects,
        )


# --- Which URLs get the token -------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.test/api/private",
        "https://API.Example.TEST/api/private",  # host case does not matter
        "https://api.example.test:443/api/private",  # the default port, written out
        "https://paths.example.test/v1",  # the prefix itself
        "https://paths.example.test/v1/",
        "https://paths.example.test/v1/private?x=1",  # below the prefix
        "http://127.0.0.1:8000/api/private",  # an http:// entry allows http://
    ],
)
async def test_an_allowed_url_gets_the_token(url: str) -> None:
    server = Server()
    await call(server, url, Session().auth())
    assert [s.authorization for s in server.sent] == [f"Bearer {TOKEN}"]


@pytest.mark.parametrize(
    "url",
    [
        # another host
        "https://other.example.test/api/private",
        # a host that merely starts or ends with the allowed one
        "https://api.example.test.evil.example/api/private",
        "https://evil-api.example.test/api/private",
        "https://www.api.example.test/api/private",
        # user information: this one goes to evil.example
        "https://api.example.test@evil.example/api/private",
        "https://api.example.test:443@evil.example/api/private",
        # an http:// downgrade of the https:// origin
        "http://api.example.test/api/private",
        "http://api.example.test:443/api/private",
        # another port
        "https://api.example.test:8443/api/private",
        "http://127.0.0.1:8001/api/private",
        # the same host under another name
        "http://localhost:8000/api/private",
        # look-alike (Cyrillic a) and percent-encoded hosts
        "https://\u0430pi.example.test/api/private",
        "https://api%2eexample.test/api/private",
        # path-prefix boundary and tricks
        "https://paths.example.test/v10",
        "https://paths.example.test/v1x/private",
        "https://paths.example.test/",
        "https://paths.example.test/V1/private",
        "https://paths.example.test/v1/../admin",
        "https://paths.example.test/v1/%2e%2e/admin",
        "https://paths.example.test/v1%2f..%2fadmin",
        "https://paths.example.test/v1/%2E%2E%5cadmin",
    ],
)
async def test_a_url_that_is_not_allowed_gets_no_token(url: str) -> None:
    server = Server()
    session = Session()
    # Even a token the caller put in by hand is taken out.
    await call(server, url, session.auth(), headers={"Authorization": "Bearer by-hand"})
    assert len(server.sent) == 1
    assert server.sent[0].authorization is None
    assert session.reads == 0  # the token is asked for only when it will be sent


async def test_an_empty_allowlist_sends_the_token_nowhere() -> None:
    server = Server()
    session = Session()
    await call(server, "https://api.example.test/api/private", session.auth(allowlist=[]))
    assert server.sent[0].authorization is None
    assert session.reads == 0


async def test_no_token_means_no_header() -> None:
    server = Server()
    await call(server, "https://api.example.test/api/private", Session(token=None).auth())
    assert server.sent[0].authorization is None


async def test_the_token_is_read_for_each_call_not_kept() -> None:
    session = Session()
    auth = session.auth()
    server = Server()
    await call(server, "https://api.example.test/a", auth)
    session.token = "tok-later"
    await call(server, "https://api.example.test/b", auth)
    assert [s.authorization for s in server.sent] == ["Bearer tok-1", "Bearer tok-later"]
    assert session.reads == 2


async def test_the_shared_client_keeps_no_token_for_the_next_caller() -> None:
    # One user's call with TokenAuth, then anyone's call on the same pingapp client.
    server = Server()
    async with make_client(transport=httpx2.MockTransport(server)) as client:
        await client.get("https://api.example.test/a", auth=Session().auth())
        await client.get("https://api.example.test/b")
        assert "Authorization" not in client.headers
    assert [s.authorization for s in server.sent] == [f"Bearer {TOKEN}", None]


# --- Allowlist entries -------------------------------------------------------------


def test_entries_are_normalised() -> None:
    allowlist = Allowlist(["HTTPS://API.Example.test:443/", "https://paths.example.test/v1/"])
    assert allowlist.allows("https://api.example.test/x")
    assert allowlist.allows("https://paths.example.test/v1/x")
    assert not allowlist.allows("https://paths.example.test/v10")
    assert AllowedTarget.parse("http://Example.test:80") == AllowedTarget(
        "http", b"example.test", 80, ""
    )


def test_other_schemes_are_never_allowed() -> None:
    assert not Allowlist(ALLOWED).allows("wss://api.example.test/")


@pytest.mark.parametrize(
    "entry",
    [
        "api.example.test",
        "ftp://api.example.test",
        "https://user@api.example.test",
        "https://api.example.test/?q=1",
        "https://api.example.test/#top",
        "https://api.example.test/v1%2f..",
        "https://api.example.test:abc",
    ],
)
def test_a_bad_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed"):
        Allowlist([entry])


# --- Redirects: followed here, the allowlist checked on every hop --------------------


async def test_a_302_from_an_allowed_host_to_another_host_gets_no_token() -> None:
    server = Server({"https://api.example.test/a": redirect("https://evil.example/steal")})
    response = await call(server, "https://api.example.test/a", Session().auth())
    assert response.status_code == 200
    assert str(response.url) == "https://evil.example/steal"
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("https://evil.example/steal", None),
    ]


async def test_a_redirect_that_downgrades_to_http_gets_no_token() -> None:
    server = Server({"https://api.example.test/a": redirect("http://api.example.test/a")})
    await call(server, "https://api.example.test/a", Session().auth())
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("http://api.example.test/a", None),
    ]


async def test_a_redirect_out_of_the_path_prefix_gets_no_token() -> None:
    server = Server({"https://paths.example.test/v1/a": redirect("/v10/a", 301)})
    await call(server, "https://paths.example.test/v1/a", Session().auth())
    assert server.authorizations == [
        ("https://paths.example.test/v1/a", f"Bearer {TOKEN}"),
        ("https://paths.example.test/v10/a", None),
    ]


async def test_every_hop_is_checked_on_its_own() -> None:
    server = Server(
        {
            "https://api.example.test/a": redirect("/b", 307),
            "https://api.example.test/b": redirect("https://other.example.test/c", 308),
            "https://other.example.test/c": redirect("https://api.example.test/d"),
        }
    )
    response = await call(server, "https://api.example.test/a", Session().auth())
    assert response.status_code == 200
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("https://api.example.test/b", f"Bearer {TOKEN}"),
        ("https://other.example.test/c", None),
        ("https://api.example.test/d", f"Bearer {TOKEN}"),
    ]
    assert len(response.history) == 3


async def test_a_redirect_from_a_host_that_is_not_allowed_to_one_that_is_gets_the_token() -> None:
    server = Server({"https://other.example.test/a": redirect("https://api.example.test/b")})
    await call(server, "https://other.example.test/a", Session().auth())
    assert server.authorizations == [
        ("https://other.example.test/a", None),
        ("https://api.example.test/b", f"Bearer {TOKEN}"),
    ]


@pytest.mark.parametrize(
    ("status", "method", "body"),
    [
        (303, "GET", b""),  # see other: a GET without the body
        (302, "GET", b""),  # what browsers (and httpx) do after a POST
        (307, "POST", b"payload"),  # same method, same body
        (308, "POST", b"payload"),
    ],
)
async def test_redirect_method_and_body(status: int, method: str, body: bytes) -> None:
    server = Server({"https://api.example.test/a": redirect("/b", status)})
    await call(server, "https://api.example.test/a", Session().auth(), "POST", content=b"payload")
    assert [(s.method, s.body, s.authorization) for s in server.sent] == [
        ("POST", b"payload", f"Bearer {TOKEN}"),
        (method, body, f"Bearer {TOKEN}"),
    ]


async def test_a_streamed_body_is_resent_on_a_307_and_on_the_retry() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"pay"
        yield b"load"

    server = Server(
        {
            "https://api.example.test/a": redirect("/b", 307),
            "https://api.example.test/b": [(401, INVALID_TOKEN), (200, {})],
        }
    )
    async with httpx2.AsyncClient(transport=WireTransport(server)) as client:
        response = await client.post(
            "https://api.example.test/a", content=chunks(), auth=Session().auth()
        )
    assert response.status_code == 200
    assert [(s.url, s.body) for s in server.sent] == [
        ("https://api.example.test/a", b"payload"),
        ("https://api.example.test/b", b"payload"),
        ("https://api.example.test/b", b"payload"),
    ]


async def test_redirects_up_to_the_limit_are_followed() -> None:
    hops = {f"https://api.example.test/{n}": redirect(f"/{n + 1}") for n in range(3)}
    server = Server(hops)
    response = await call(server, "https://api.example.test/0", Session().auth(max_redirects=3))
    assert response.status_code == 200
    assert len(server.sent) == 4


async def test_one_redirect_past_the_limit_raises() -> None:
    hops = {f"https://api.example.test/{n}": redirect(f"/{n + 1}") for n in range(4)}
    server = Server(hops)
    with pytest.raises(httpx2.TooManyRedirects):
        await call(server, "https://api.example.test/0", Session().auth(max_redirects=3))
    assert len(server.sent) == 4  # the fourth redirect is not followed


async def test_a_redirect_loop_ends() -> None:
    server = Server({"https://api.example.test/loop": redirect("/loop")})
    with pytest.raises(httpx2.TooManyRedirects):
        await call(server, "https://api.example.test/loop", Session().auth())
    assert len(server.sent) == 6  # the first request and the 5 default redirects


async def test_a_client_that_follows_redirects_itself_is_refused() -> None:
    server = Server({"https://api.example.test/a": redirect("/b")})
    with pytest.raises(RuntimeError, match="follow_redirects=False"):
        await call(server, "https://api.example.test/a", Session().auth(), follow_redirects=True)


def test_a_sync_client_is_refused() -> None:
    with (
        httpx2.Client(transport=httpx2.MockTransport(Server())) as client,
        pytest.raises(RuntimeError, match="AsyncClient"),
    ):
        client.get("https://api.example.test/a", auth=Session().auth())


# --- 401 invalid_token: refresh once, retry once -------------------------------------


async def test_an_invalid_token_is_refreshed_once_and_retried_once() -> None:
    session = Session()
    server = Server({"https://api.example.test/a": [(401, INVALID_TOKEN), (200, {})]})
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == 200
    assert session.refreshes == 1
    assert session.rejected == [TOKEN]  # the provider is told which token was refused
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("https://api.example.test/a", f"Bearer {NEW_TOKEN}"),
    ]


async def test_a_second_401_is_returned_as_is() -> None:
    session = Session()
    server = Server({"https://api.example.test/a": [(401, INVALID_TOKEN)]})
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == 401
    assert session.refreshes == 1
    assert len(server.sent) == 2


async def test_the_retry_resends_the_body() -> None:
    server = Server({"https://api.example.test/a": [(401, INVALID_TOKEN), (200, {})]})
    await call(server, "https://api.example.test/a", Session().auth(), "POST", content=b"data")
    assert [(s.method, s.body) for s in server.sent] == [("POST", b"data"), ("POST", b"data")]


@pytest.mark.parametrize(
    ("status", "challenge"),
    [
        (401, "Bearer"),  # no token was acceptable: nothing to refresh
        (401, 'Bearer realm="api"'),
        (401, 'Bearer error="invalid_request"'),
        (401, 'Bearer error="invalid_request", error_description="error=invalid_token"'),
        (403, 'Bearer error="insufficient_scope", scope="read:messages"'),
        (403, 'Bearer error="invalid_token"'),  # only a 401 means "refresh"
        (401, 'Bearer realm="api", DPoP error="invalid_token"'),  # another scheme's error
    ],
)
async def test_other_refusals_are_not_retried(status: int, challenge: str) -> None:
    session = Session()
    server = Server({"https://api.example.test/a": [(status, {"WWW-Authenticate": challenge})]})
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == status
    assert session.refreshes == 0
    assert len(server.sent) == 1


async def test_the_error_parameter_is_found_in_any_form() -> None:
    challenge = "Basic realm=x, Bearer realm=api, ERROR=invalid_token"
    session = Session()
    server = Server({"https://api.example.test/a": [(401, {"WWW-Authenticate": challenge})]})
    await call(server, "https://api.example.test/a", session.auth())
    assert session.refreshes == 1


async def test_a_failed_refresh_returns_the_401() -> None:
    session = Session(new_token=None)
    server = Server({"https://api.example.test/a": [(401, INVALID_TOKEN)]})
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == 401
    assert session.refreshes == 1
    assert len(server.sent) == 1


async def test_without_a_refresh_the_401_is_returned() -> None:
    session = Session()
    server = Server({"https://api.example.test/a": [(401, INVALID_TOKEN)]})
    response = await call(
        server, "https://api.example.test/a", TokenAuth(session.provide, ALLOWED, retry=False)
    )
    assert response.status_code == 401
    assert len(server.sent) == 1


async def test_a_401_from_a_host_that_got_no_token_does_not_refresh() -> None:
    session = Session()
    server = Server({"https://evil.example/a": [(401, INVALID_TOKEN)]})
    response = await call(server, "https://evil.example/a", session.auth())
    assert response.status_code == 401
    assert session.refreshes == 0
    assert server.authorizations == [("https://evil.example/a", None)]


async def test_a_hop_is_retried_once_with_the_new_token_and_only_once_per_call() -> None:
    session = Session()
    server = Server(
        {
            "https://api.example.test/a": redirect("/b"),
            "https://api.example.test/b": [(401, INVALID_TOKEN), (200, {})],
        }
    )
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == 200
    assert session.refreshes == 1
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("https://api.example.test/b", f"Bearer {TOKEN}"),
        ("https://api.example.test/b", f"Bearer {NEW_TOKEN}"),
    ]


async def test_after_a_refresh_a_later_hop_is_not_refreshed_again() -> None:
    session = Session()
    server = Server(
        {
            "https://api.example.test/a": [(401, INVALID_TOKEN), *redirect("/b")],
            "https://api.example.test/b": [(401, INVALID_TOKEN)],
        }
    )
    response = await call(server, "https://api.example.test/a", session.auth())
    assert response.status_code == 401
    assert session.refreshes == 1
    assert server.authorizations == [
        ("https://api.example.test/a", f"Bearer {TOKEN}"),
        ("https://api.example.test/a", f"Bearer {NEW_TOKEN}"),
        ("https://api.example.test/b", f"Bearer {NEW_TOKEN}"),
    ]
