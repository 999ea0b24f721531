"""The process's one shared HTTP client and the token-attaching auth.

One `httpx.AsyncClient` per backend process (`make_client`), opened and closed
by the app's lifespan with the application context (`pingapp.context`), so
every outbound call (the API, the provider) reuses the same connection pool
instead of paying for a new TCP/TLS connection per call.

The user's access token is never stored on that client: each call passes a
`BearerAuth` built for it, which attaches the token only to URLs on the
`Allowlist` (exact scheme, host and port, optionally a path prefix) and follows
redirects itself, re-checking the allowlist on every hop (SECURITY.md item 21).

The client keeps no cookies (SECURITY.md item 32): it is shared by every user,
so a cookie one upstream set during one user's call would otherwise be sent on
every later call to that upstream, whoever makes it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
)
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy

import httpx
from starlette.types import ASGIApp

from pingapp.allowlist import Allowlist
from pingapp.settings import get_settings


class NoCookieJar(CookieJar):
    """A cookie jar that is always empty: it never stores, so never sends, a cookie.

    httpx has no switch to turn cookies off, but it uses a `CookieJar` passed as
    `cookies=` as it is. Every way a cookie enters a jar (`extract_cookies` for a
    response's `Set-Cookie`, `set_cookie_if_ok`, `client.cookies.set(...)`) ends
    in `set_cookie`, which here keeps nothing. So when httpx copies the jar's
    cookies into a plain jar (to build a redirect, or to merge per-request
    cookies) there is nothing to copy. The policy, the standard library's
    `DefaultCookiePolicy` with an empty `allowed_domains` ("accept and return
    cookies only for these domains": none), refuses every cookie before that.
    """

    def __init__(self) -> None:
        super().__init__(policy=DefaultCookiePolicy(allowed_domains=[]))

    def set_cookie(self, cookie: Cookie) -> None:
        """Keep nothing (see the class docstring)."""
        del cookie


def make_client(*, http_timeout: float | None = None, **kwargs: object) -> httpx.AsyncClient:
    """A client with pingapp's explicit timeouts and limits, and no cookies.

    `http_timeout` is the budget of one call in seconds (default: HTTP_TIMEOUT).
    `kwargs` are passed to `httpx.AsyncClient` and may replace any option
    except `cookies`: the client always has a `NoCookieJar`.
    """
    if "cookies" in kwargs:
        msg = "the shared client keeps no cookies; send a Cookie header per request instead"
        raise ValueError(msg)
    total = get_settings().http_timeout if http_timeout is None else http_timeout
    options: dict = {
        # connect gets a shorter budget: a refused or unroutable host should
        # fail fast, a slow answer may take the whole budget.
        "timeout": httpx.Timeout(total, connect=min(total, 5.0)),
        # Keep every pooled connection alive: with fewer keep-alive slots than
        # connections, httpcore closes and reopens connections under load.
        "limits": httpx.Limits(max_connections=100, max_keepalive_connections=100),
        # Redirects are followed by the caller's auth flow, hop by hop.
        "follow_redirects": False,
        "headers": {"User-Agent": "pingapp"},
        # Shared by every user: no cookie jar that one user's call could fill.
        "cookies": NoCookieJar(),
    }
    options.update(kwargs)
    return httpx.AsyncClient(**options)


_client: httpx.AsyncClient | None = None


def shared_client() -> httpx.AsyncClient:
    """The process's shared client (the app reaches it as `context().client`)."""
    if _client is None:
        msg = "the shared HTTP client is not open (is the backend's lifespan running?)"
        raise RuntimeError(msg)
    return _client


@contextlib.asynccontextmanager
async def use_client(client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """Install `client` as the shared client for the duration of the block."""
    global _client  # the one process-wide client, by design
    previous, _client = _client, client
    try:
        async with client:
            yield client
    finally:
        _client = previous


@contextlib.asynccontextmanager
async def http_client_lifespan(
    in_process: Mapping[str, ASGIApp] | None = None, *, http_timeout: float | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Open the shared client for the block (a lifespan task: the app's, through
    `pingapp.context.serve_context`, or the API's when it is served on its own).

    `in_process` maps an origin (this backend's own) to the ASGI app that serves
    it there: calls to it are answered in this process, without a TCP round trip
    to ourselves, and still pass through the same client and its auth flow.
    """
    mounts = {origin: httpx.ASGITransport(app=asgi) for origin, asgi in (in_process or {}).items()}
    async with use_client(make_client(http_timeout=http_timeout, mounts=mounts)) as client:
        yield client


# --- The token-attaching auth: where a bearer token may go -------------------

#: One `name=value` or `name="quoted value"` parameter of a WWW-Authenticate
#: challenge; quoted strings are consumed whole, so text inside them never counts.
_AUTH_PARAM = re.compile(r"""([\w!#$%&'*+.^`|~-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)""")


def _says_invalid_token(response: httpx.Response) -> bool:
    """Whether this is a 401 with `error="invalid_token"` (RFC 6750 section 3.1)."""
    if response.status_code != httpx.codes.UNAUTHORIZED:
        return False
    return any(
        name.lower() == "error" and value.strip('"') == "invalid_token"
        for challenge in response.headers.get_list("WWW-Authenticate")
        for name, value in _AUTH_PARAM.findall(challenge)
    )


#: Called as `provide(None)` for the call's token, and `provide(rejected)` for one
#: to replace a token the server refused; None: no token.
TokenProvider = Callable[[str | None], Awaitable[str | None]]


class BearerAuth(httpx.Auth):
    """Attach `Authorization: Bearer <token>` to allow-listed URLs only.

    Build one per call, never store it on the shared client:

        auth = BearerAuth(session_tokens, context().allowlist)
        response = await context().client.get(url, auth=auth)

    - The token comes from `provide(None)`, awaited the first time a request of
      the call goes to an allowed URL (never when none does), not kept between
      calls. None means "no token": the request goes out without one.
    - Redirects are followed here, hop by hop, up to `max_redirects` (then
      `httpx.TooManyRedirects`). Every hop is checked against the allowlist, and
      a hop that is not allowed is sent with no `Authorization` at all. Method and
      body follow httpx's redirect rules: 303 (and 301/302 after POST) become a GET
      without body; 307/308 resend the same method and body.
    - A 401 with `error="invalid_token"` to a request that carried token T calls
      `provide(T)` once (with `retry`, the default) and resends that request once
      with the token it gives; any further 401 is returned as is. None ends the call.

    Needs a client with `follow_redirects=False` (the shared one): if the client
    follows redirects itself, the hops bypass this check and the call fails with
    RuntimeError. The client's own `max_redirects` also caps the hops and retries.
    """

    # Read the body up front so that a 307/308 hop or the retry can resend it.
    requires_request_body = True

    def __init__(
        self,
        provide: TokenProvider,
        allowlist: Allowlist | Iterable[str],
        *,
        retry: bool = True,
        max_redirects: int = 5,
    ) -> None:
        self.provide = provide
        self.allowlist = allowlist if isinstance(allowlist, Allowlist) else Allowlist(allowlist)
        self.retry = retry
        self.max_redirects = max_redirects

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        msg = "BearerAuth reads the token asynchronously: use it with httpx.AsyncClient"
        raise RuntimeError(msg)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        token: str | None = None
        token_read = retried = False
        redirects = received = 0
        while True:
            # Whatever Authorization the request has (from the caller or an
            # earlier hop) is dropped; only an allowed URL gets one back.
            request.headers.pop("Authorization", None)
            sends_token = False
            if self.allowlist.allows(request.url):
                if not token_read:
                    token, token_read = await self.provide(None), True
                if token:
                    request.headers["Authorization"] = f"Bearer {token}"
                    sends_token = True

            response = yield request

            if len(response.history) != received:
                msg = (
                    "the client followed redirects itself, past BearerAuth's allowlist "
                    "check; call it with follow_redirects=False"
                )
                raise RuntimeError(msg)
            received += 1

            if sends_token and not retried and self.retry and _says_invalid_token(response):
                retried = True
                token = await self.provide(token)
                if token:
                    continue  # the same request once more, with the new token
                return

            next_request = response.next_request
            if next_request is None:
                return
            if redirects >= self.max_redirects:
                msg = f"more than {self.max_redirects} redirects"
                raise httpx.TooManyRedirects(msg, request=next_request)
            redirects += 1
            request = next_request
