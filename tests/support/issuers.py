"""A local OpenID Provider stand-in: discovery and a JWKS over real HTTP, and tokens.

`Issuer` is the state behind an HTTP server on 127.0.0.1 (a free port, its own
thread): a discovery document and a JWKS the test can change, slow down or break,
and the requests it got. `Minter` signs tokens for it with keys made here; nothing
leaves the machine.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.clock import FakeClock

AUDIENCE = "urn:pingapp:test-api"
CLIENT_ID = "test-client"


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
    """The running HTTP server behind an `Issuer`."""

    issuer: Issuer
    httpd: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_server(issuer: Issuer) -> Server:
    """Serve `issuer` on 127.0.0.1 (a free port, set as its `url`) from a thread."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    httpd.daemon_threads = True
    issuer.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return Server(issuer, httpd, thread)


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


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(key: Key, header: dict[str, Any], claims: dict[str, Any] | str) -> str:
    """A token with exactly this header and payload, signed by `key` with the header's RS alg."""
    payload = claims if isinstance(claims, str) else json.dumps(claims)
    body = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    algorithm = jwt.get_algorithm_by_name(str(header.get("alg", "RS256")))
    signature = algorithm.sign(body.encode(), key.private)
    return f"{body}.{b64(signature)}"
