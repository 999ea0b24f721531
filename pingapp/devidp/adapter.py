"""Starlette requests as authlib sees them.

A handler first reads what it needs from the Starlette request on the event loop
(`read_request` gives an `HttpIn`), then runs authlib, which is synchronous, in a
worker thread with a `StarletteOAuth2Request` built from it. The helpers below get
the parts of an authlib request that a grant must have, or raise the OAuth error
that fits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
)
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pingapp.devidp.models import Client, Subject
from pingapp.web.clientaddr import client_address

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider


@dataclass(frozen=True)
class HttpIn:
    """What a handler needs from a Starlette request, read before leaving the loop."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)
    cookies: Mapping[str, str] = field(default_factory=dict)
    #: The client as a throttle counts it (`pingapp.web.clientaddr.client_address`): the
    #: socket's peer; `X-Forwarded-For` only from a trusted proxy (TRUSTED_PROXIES).
    client: str = ""
    #: Every `DPoP` header sent (RFC 9449: more than one is an invalid request).
    dpop_proofs: tuple[str, ...] = ()

    @property
    def params(self) -> list[tuple[str, str]]:
        """OAuth parameters: the body for POST, the query string otherwise."""
        return self.form if self.method == "POST" else self.query


async def read_request(
    request: Request,
    url_of: Callable[[str], str],
    trusted_proxies: Sequence[IPv4Network | IPv6Network] = (),
) -> HttpIn:
    """Everything a handler needs, read on the event loop; the URL comes from the
    issuer (`url_of` a path: configuration), never from the Host header, and the
    client address from the socket unless its peer is one of `trusted_proxies`."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            async with request.form() as data:
                form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    query = request.url.query
    return HttpIn(
        method=request.method,
        url=url_of(path) + (f"?{query}" if query else ""),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=form,
        cookies=request.cookies,
        client=client_address(request.scope, trusted_proxies),
        dpop_proofs=tuple(request.headers.getlist("dpop")),
    )


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            datalist[name].append(value)
        self._datalist = datalist
        self._data = {name: values[0] for name, values in datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    def __init__(self, http: HttpIn) -> None:
        super().__init__(http.method, http.url, headers=http.headers)
        self.payload = _Payload(http.params)
        self._args = dict(http.query)
        self._form = dict(http.form)
        self.dpop_proofs: tuple[str, ...] = http.dpop_proofs
        #: The thumbprint of the key of the request's valid DPoP proof (`proofs.py`).
        self.dpop_jkt: str | None = None

    @property
    def args(self) -> dict[str, str]:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def authorize_request(url_of: Callable[[str], str], params: list[tuple[str, str]]) -> HttpIn:
    """A GET of `/authorize` with these parameters (a replayed or pushed request)."""
    return HttpIn("GET", url_of(f"/authorize?{urlencode(params)}"), {}, query=params)


def dpop_jkt_of(request: OAuth2Request) -> str | None:
    """The key a valid DPoP proof of this token request was made with, if any."""
    return getattr(request, "dpop_jkt", None)


def payload_of(request: OAuth2Request) -> OAuth2Payload:
    if request.payload is None:
        raise InvalidRequestError()
    return request.payload


def client_of(request: OAuth2Request) -> Client:
    if not isinstance(request.client, Client):
        raise InvalidClientError()
    return request.client


def subject_of(request: OAuth2Request) -> Subject:
    if not isinstance(request.user, Subject):
        raise InvalidGrantError()
    return request.user


def is_bad_input(error: ValueError) -> bool:
    """authlib raises ValueError, not an OAuth error, when an error description would
    quote a character RFC 6749 forbids there (e.g. a `"` in a redirect URI)."""
    return "forbidden characters" in str(error)


class Server(AuthorizationServer):
    """authlib's server, taking `HttpIn` and answering with Starlette responses."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(scopes_supported=provider.scopes)
        self.provider = provider

    def query_client(self, client_id: str) -> Client | None:  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_tokens(token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return StarletteOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError  # no JSON endpoints (no dynamic registration)

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        header_map = dict(headers or [])
        if isinstance(body, dict):
            header_map.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=header_map)
        return Response(body or b"", status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None
