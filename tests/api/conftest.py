"""A real local OpenID Provider stand-in for the API tests.

`Issuer` is an HTTP server on 127.0.0.1 (a free port, its own thread) serving
a discovery document and a JWKS that the test can change, slow down or stop,
and that counts the requests it gets. Tokens are signed with keys generated
here; nothing leaves the machine. `serve` puts an ASGI app (the API) on a real
HTTP port too, in the test's own event loop, so it shares the fake clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from granian.constants import Interfaces
from granian.server.embed import Server as EmbeddedServer
from jwt.algorithms import RSAAlgorithm
from starlette.types import ASGIApp

from pingapp.api import DPoPPolicy, create_api
from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import DPoPKey, MemoryReplayCache, make_proof

AUDIENCE = "urn:pingapp:test-api"
CLIENT_ID = "test-client"
FRONTEND = "http://127.0.0.1:3999"


@dataclass
class Key:
    """A signing key and its public JWK."""

    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self, **extra: Any) -> dict[str, Any]:
        data = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "use": "sig", **extra}


def new_key(kid: str | None = None) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Key(kid or uuid.uuid4().hex, private)


@pytest.fixture(scope="session")
def keys() -> list[Key]:
    """Three keys, made once: generating RSA keys is the slow part."""
    return [new_key("key-1"), new_key("key-2"), new_key("key-3")]


@dataclass
class Issuer:
    """The state behind the local server; tests change it between requests."""

    jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    delay: float = 0.0
    #: Seconds between bytes of the JWKS body: a server that never quite stalls.
    trickle: float = 0.0
    status: int = 200
    #: The discovery document's status: anything but 200 is "the issuer is down".
    discovery_status: int = 200
    #: Fields that replace (or, set to None, remove) those of the discovery document.
    overrides: dict[str, Any] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jwks_fetches(self) -> int:
        return self.hits.get("/jwks.json", 0)

    def publish(self, *keys: Key) -> None:
        self.jwks = {"keys": [key.jwk() for key in keys]}

    @property
    def discovery_fetches(self) -> int:
        return self.hits.get("/.well-known/openid-configuration", 0)

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks.json",
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.overrides,
        }
        return {name: value for name, value in document.items() if value is not None}


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with issuer.lock:
                issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
            if issuer.delay:
                time.sleep(issuer.delay)
            if self.path == "/.well-known/openid-configuration":
                body = issuer.discovery()
            elif self.path == "/jwks.json":
                body = issuer.jwks
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            status = issuer.status if self.path == "/jwks.json" else issuer.discovery_status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if issuer.trickle and self.path == "/jwks.json":
                for index in range(len(data)):
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
                    time.sleep(issuer.trickle)
                return
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    return Handler


@dataclass
class Server:
    issuer: Issuer
    httpd: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_server(issuer: Issuer) -> Server:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    httpd.daemon_threads = True
    issuer.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return Server(issuer, httpd, thread)


@pytest.fixture
def server(keys: list[Key]) -> Iterator[Server]:
    issuer = Issuer()
    issuer.publish(keys[0])
    running = start_server(issuer)
    yield running
    running.stop()


@pytest.fixture
def issuer(server: Server) -> Issuer:
    return server.issuer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """`app` over real HTTP on 127.0.0.1, in this event loop (granian's embedded
    server, without lifespan); yields its base URL once it answers."""
    port = free_port()
    server = EmbeddedServer(
        app, address="127.0.0.1", port=port, interface=Interfaces.ASGINL, log_enabled=False
    )
    task = asyncio.create_task(server.serve())
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            for _ in range(3000):  # until it listens; a readiness wait, not a timing
                try:
                    await probe.get(url + "/")
                    break
                except httpx.TransportError:
                    assert not task.done(), "the embedded server stopped"
                    await asyncio.sleep(0.01)
            else:
                pytest.fail(f"nothing answers at {url}")
        yield url
    finally:
        server.stop()
        await task


class FakeClock:
    """Wall clock and monotonic clock the test can move forward."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_verifier(idp: Issuer, clock: FakeClock, **options: Any) -> TokenVerifier:
    settings: dict[str, Any] = {
        "issuer": idp.url,
        "audience": AUDIENCE,
        "client_id": CLIENT_ID,
        "fetch_timeout": 1.0,
        "clock": clock.time,
        "monotonic": clock.monotonic,
        **options,
    }
    return TokenVerifier(**settings)


@pytest.fixture
async def verifier(issuer: Issuer, clock: FakeClock) -> AsyncIterator[TokenVerifier]:
    verifier = make_verifier(issuer, clock)
    yield verifier
    await verifier.aclose()


def make_api(verifier: TokenVerifier) -> FastAPI:
    return create_api(verifier, cors_origins=[FRONTEND])


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_api(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


class Minter:
    """Signs tokens for the local issuer; every field can be overridden."""

    def __init__(self, issuer: Issuer, key: Key, clock: FakeClock) -> None:
        self.issuer = issuer
        self.key = key
        self.clock = clock

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock.time())
        claims: dict[str, Any] = {
            "iss": self.issuer.url,
            "sub": "auth0|user-1",
            "aud": AUDIENCE,
            "azp": CLIENT_ID,
            "iat": now,
            "exp": now + 600,
            "scope": "openid profile read:messages",
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        *,
        key: Key | None = None,
        headers: dict[str, Any] | None = None,
        algorithm: str = "RS256",
        **claims: Any,
    ) -> str:
        key = key or self.key
        header = {"alg": algorithm, "kid": key.kid, "typ": "at+jwt", **(headers or {})}
        header = {name: value for name, value in header.items() if value not in (None, "")}
        return sign_raw(key, header, self.claims(**claims))


@pytest.fixture
def mint(issuer: Issuer, keys: list[Key], clock: FakeClock) -> Minter:
    return Minter(issuer, keys[0], clock)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(key: Key, header: dict[str, Any], claims: dict[str, Any] | str) -> str:
    """A token with exactly this header and payload, signed by `key` with the header's RS alg."""
    payload = claims if isinstance(claims, str) else json.dumps(claims)
    body = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    algorithm = jwt.get_algorithm_by_name(str(header.get("alg", "RS256")))
    signature = algorithm.sign(body.encode(), key.private)
    return f"{body}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: One challenge's scheme (a token with no `=` after it) or one `name=value` parameter.
_AUTH_PART = re.compile(r"""\s*([\w!#$%&'*+.^`|~-]+)(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?\s*,?""")


def challenges(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Every `WWW-Authenticate` challenge, by scheme, with its parameters (unquoted)."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for value in response.headers.get_list("www-authenticate"):
        for name, quoted in _AUTH_PART.findall(value):
            if not quoted:
                current = found.setdefault(name, {})
                continue
            assert current is not None, "a parameter before any scheme"
            current[name] = re.sub(r"\\(.)", r"\1", quoted.strip('"'))
    return found


def challenge(response: httpx.Response, scheme: str = "Bearer") -> dict[str, str]:
    """The parameters of the `WWW-Authenticate` challenge of `scheme` (checked present)."""
    found = challenges(response)
    assert scheme in found, response.headers.get("www-authenticate")
    return found[scheme]


# -- DPoP (RFC 9449) ------------------------------------------------------------------

#: The URL the DPoP tests' clients call, and the API's public URL behind the "proxy".
DPOP_BASE = "http://127.0.0.1"
PUBLIC_API = "https://api.example.test/api"


@pytest.fixture(scope="session")
def dpop_key() -> DPoPKey:
    return DPoPKey.generate()


def dpop_policy(clock: FakeClock, **options: Any) -> DPoPPolicy:
    """A policy on the test's clock, the API public at `PUBLIC_API`."""
    return DPoPPolicy(
        **{"public_url": PUBLIC_API, "clock": clock.time, "replay": MemoryReplayCache(), **options}
    )


@contextlib.asynccontextmanager
async def dpop_client(
    verifier: TokenVerifier, policy: DPoPPolicy
) -> AsyncIterator[httpx.AsyncClient]:
    api = create_api(verifier, cors_origins=[FRONTEND], dpop=policy)
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url=DPOP_BASE) as client:
        yield client


def with_proof(
    key: DPoPKey,
    token: str,
    path: str,
    clock: FakeClock,
    *,
    method: str = "GET",
    **options: Any,
) -> dict[str, str]:
    """`Authorization: DPoP <token>` and a fresh proof for `method PUBLIC_API+path`."""
    proof = make_proof(
        key, method, PUBLIC_API + path, access_token=token, now=clock.time(), **options
    )
    return {"Authorization": f"DPoP {token}", "DPoP": proof}
