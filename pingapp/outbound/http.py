"""The process's one shared HTTP client and the token-attaching auth.

One `httpx2.AsyncClient` per backend process (`make_client`), opened and closed
by the app's lifespan with the application context (`pingapp.context`), so
every outbound call (the API, the provider) reuses the same connection pool
instead of paying for a new TCP/TLS connection per call.

The user's access token is never stored on that client: each call passes a
`TokenAuth` built for it, which attaches the token (a bearer token, or a
DPoP-bound one with a fresh proof per request) only to URLs on the
`Allowlist` (exact scheme, host and port, optionally a path prefix) and follows
redirects itself, re-checking the allowlist on every hop (docs/security.md item 21).

The client keeps no cookies (docs/security.md item 32): it is shared by every user,
so a cookie one upstream set during one user's call would otherwise be sent on
every later call to that upstream, whoever makes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
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

import httpx2
from starlette.types import ASGIApp

from pingapp import telemetry_instrument
from pingapp.dpop import DPoPKey, NonceMemory, Prover, retry_with_nonce
from pingapp.outbound.allowlist import Allowlist
from pingapp.settings import get_settings
from pingapp.web.challenges import challenge_error


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


def make_client(*, http_timeout: float | None = None, **kwargs: object) -> httpx2.AsyncClient:
    """A client with pingapp's explicit timeouts and limits, and no cookies.

    `http_timeout` is the budget of one call in seconds (default: HTTP_TIMEOUT).
    `kwargs` are passed to `httpx2.AsyncClient` and may replace any option
    except `cookies`: the client always has a `NoCookieJar`.
    """
    if "cookies" in kwargs:
        msg = "the shared client keeps no cookies; send a Cookie header per request instead"
        raise ValueError(msg)
    total = get_settings().http_timeout if http_timeout is None else http_timeout
    options: dict = {
        # connect gets a shorter budget: a refused or unroutable host should
        # fail fast, a slow answer may take the whole budget.
        "timeout": httpx2.Timeout(total, connect=min(total, 5.0)),
        # Keep every pooled connection alive: with fewer keep-alive slots than
        # connections, httpcore closes and reopens connections under load.
        "limits": httpx2.Limits(max_connections=100, max_keepalive_connections=100),
        # Redirects are followed by the caller's auth flow, hop by hop.
        "follow_redirects": False,
        "headers": {"User-Agent": "pingapp"},
        # Shared by every user: no cookie jar that one user's call could fill.
        "cookies": NoCookieJar(),
    }
    options.update(kwargs)
    return httpx2.AsyncClient(**options)


@contextlib.asynccontextmanager
async def http_client_lifespan(
    in_process: Mapping[str, ASGIApp] | None = None, *, http_timeout: float | None = None
) -> AsyncIterator[httpx2.AsyncClient]:
    """Open the process's shared client for the block (the app's lifespan, through
    `pingapp.context.serve_context`, or the API's when it is served on its own).

    `in_process` maps an origin (this backend's own) to the ASGI app that serves
    it there: calls to it are answered in this process, without a TCP round trip
    to ourselves, and still pass through the same client and its auth flow.
    """
    mounts = {origin: httpx2.ASGITransport(app=asgi) for origin, asgi in (in_process or {}).items()}
    client = make_client(http_timeout=http_timeout, mounts=mounts)
    # With telemetry on, each call is a client span whose `traceparent` goes with it
    # (the in-process API's spans join the caller's trace); off, nothing changes.
    telemetry_instrument.instrument_client(client)
    async with client:
        yield client


# --- The token-attaching auth: where a bearer token may go -------------------


def _says_invalid_token(response: httpx2.Response, sent: Credential) -> bool:
    """Whether this is a 401 whose challenge for the scheme the token was sent with
    says `error="invalid_token"` (RFC 6750 section 3.1, RFC 9449 section 7.1)."""
    scheme = "dpop" if sent.dpop_key is not None else "bearer"
    return (
        response.status_code == httpx2.codes.UNAUTHORIZED
        and challenge_error(response, scheme) == "invalid_token"
    )


@dataclasses.dataclass(frozen=True)
class Credential:
    """An access token and, when it is DPoP-bound (RFC 9449), the key it is bound to."""

    token: str
    dpop_key: DPoPKey | None = None


#: Called as `provide(None)` for the call's token, and `provide(rejected)` for one
#: to replace a token the server refused; None: no token. A plain string is a
#: bearer token.
TokenProvider = Callable[[str | None], Awaitable[str | Credential | None]]


def _credential(given: str | Credential | None) -> Credential | None:
    if isinstance(given, str):
        return Credential(given) if given else None
    return given if given and given.token else None


class TokenAuth(httpx2.Auth):
    """Attach the access token to allow-listed URLs only: `Authorization: Bearer
    <token>`, or for a DPoP-bound token `Authorization: DPoP <token>` and a fresh
    `DPoP` proof for that very request.

    Build one per call, never store it on the shared client:

        auth = TokenAuth(session_tokens, context().allowlist, nonces=context().dpop_nonces)
        response = await context().client.get(url, auth=auth)

    - The token comes from `provide(None)`, awaited the first time a request of
      the call goes to an allowed URL (never when none does), not kept between
      calls. None means "no token": the request goes out without one.
    - Redirects are followed here, hop by hop, up to `max_redirects` (then
      `httpx2.TooManyRedirects`). Every hop is checked against the allowlist, and
      a hop that is not allowed is sent with no `Authorization` and no `DPoP`
      header at all; an allowed hop gets a new proof (its `htu` is the hop's URL).
      Method and body follow httpx's redirect rules: 303 (and 301/302 after POST)
      become a GET without body; 307/308 resend the same method and body.
    - With a bound token, the server's `DPoP-Nonce` is remembered per origin (in
      `nonces`) and put in later proofs; a 401 whose DPoP challenge says
      `use_dpop_nonce` resends that request once with a proof carrying it.
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
        nonces: NonceMemory | None = None,
    ) -> None:
        self.provide = provide
        self.allowlist = allowlist if isinstance(allowlist, Allowlist) else Allowlist(allowlist)
        self.retry = retry
        self.max_redirects = max_redirects
        self.nonces = NonceMemory() if nonces is None else nonces

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        msg = "TokenAuth reads the token asynchronously: use it with httpx2.AsyncClient"
        raise RuntimeError(msg)

    def _attach(self, request: httpx2.Request, credential: Credential) -> None:
        if credential.dpop_key is None:
            request.headers["Authorization"] = f"Bearer {credential.token}"
            return
        prover = Prover(credential.dpop_key, self.nonces)
        request.headers["DPoP"] = prover.proof(request.method, request.url, credential.token)
        request.headers["Authorization"] = f"DPoP {credential.token}"

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await request.aread()
        credential: Credential | None = None
        token_read = retried = nonce_retried = False
        redirects = received = 0
        while True:
            # Whatever Authorization or proof the request has (from the caller or
            # an earlier hop) is dropped; only an allowed URL gets them back.
            request.headers.pop("Authorization", None)
            request.headers.pop("DPoP", None)
            sent: Credential | None = None
            if self.allowlist.allows(request.url):
                if not token_read:
                    credential, token_read = _credential(await self.provide(None)), True
                if credential:
                    self._attach(request, credential)
                    sent = credential

            response = yield request

            if len(response.history) != received:
                msg = (
                    "the client followed redirects itself, past TokenAuth's allowlist "
                    "check; call it with follow_redirects=False"
                )
                raise RuntimeError(msg)
            received += 1

            if sent is not None and sent.dpop_key is not None:
                asked = await retry_with_nonce(request.url, response, self.nonces)
                if asked and not nonce_retried:
                    nonce_retried = True
                    continue  # the same request once more, its proof with the nonce

            if sent and not retried and self.retry and _says_invalid_token(response, sent):
                retried = True
                credential = _credential(await self.provide(sent.token))
                if credential:
                    continue  # the same request once more, with the new token
                return

            next_request = response.next_request
            if next_request is None:
                return
            if redirects >= self.max_redirects:
                msg = f"more than {self.max_redirects} redirects"
                raise httpx2.TooManyRedirects(msg, request=next_request)
            redirects += 1
            request = next_request
