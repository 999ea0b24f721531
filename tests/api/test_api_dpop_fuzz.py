"""Mutated DPoP proofs (header, claims, signature) never make the API answer 5xx, and
are never accepted when any check of RFC 9449 section 4.3 fails (property-based).

Each example starts from a valid proof for a bound token, applies one mutation and
says, from the mutation alone, whether the proof must still pass; the API must agree.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from jwt.utils import base64url_decode

from pingapp.api import create_api
from pingapp.dpop import DPoPKey, token_hash
from tests.support.api import make_verifier
from tests.support.clock import FakeClock
from tests.support.dpop_api import PUBLIC_API, dpop_policy
from tests.support.fuzz import FUZZ, Client, json_values, printable
from tests.support.issuers import Issuer, Key, Minter, b64, start_server

PATH = "/private-scoped"
URL = PUBLIC_API + PATH

#: `htu` values that name the same URL (RFC 9449 section 4.3: no query, no fragment,
#: RFC 3986 normalisation), and some that do not.
SAME_URL = [
    URL,
    "HTTPS://API.example.test/api/private-scoped",
    "https://api.example.test:443/api/private-scoped",
    "https://api.example.test/api/./private-scoped?x=1#frag",
    "https://api.example.test/api/%70rivate-scoped",
]
OTHER_URL = [
    "http://api.example.test/api/private-scoped",
    "https://api.example.test/api/private",
    "https://api.example.test:8443/api/private-scoped",
    "https://user@api.example.test/api/private-scoped",
    "http://127.0.0.1/private-scoped",
    "/api/private-scoped",
]


@dataclass
class World:
    client: Client
    key: DPoPKey
    other: DPoPKey
    token: str
    clock: FakeClock
    accepted_jtis: set[str] = field(default_factory=set)

    def claims(self) -> dict[str, Any]:
        return {
            "jti": uuid.uuid4().hex,
            "htm": "GET",
            "htu": URL,
            "iat": int(self.clock.time()),
            "ath": token_hash(self.token),
        }

    def header(self) -> dict[str, Any]:
        return {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.public_jwk}


@pytest.fixture(scope="module")
def world(keys: list[Key]) -> Iterator[World]:
    issuer = Issuer()
    issuer.publish(keys[0])
    server = start_server(issuer)
    clock = FakeClock()
    verifier = make_verifier(issuer, clock)
    loop = asyncio.new_event_loop()
    api = create_api(verifier, cors_origins=[], dpop=dpop_policy(clock))
    client = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=api), base_url="http://127.0.0.1"
    )
    key, other = DPoPKey.generate(), DPoPKey.generate()
    token = Minter(issuer, keys[0], clock).token(cnf={"jkt": key.jkt})
    yield World(Client(loop, client), key, other, token, clock)
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(verifier.aclose())
    loop.close()
    server.stop()


def sign(key: DPoPKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    body = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = jwt.get_algorithm_by_name("ES256").sign(body.encode(), key.private_key)
    return f"{body}.{b64(signature)}"


def good_iat(value: object, now: float) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and -5 <= now - value <= 60  # type: ignore[arg-type]


def good_claim(world: World, name: str, value: object) -> bool:
    """Whether a proof whose claim `name` is `value` (all else valid) must pass."""
    if name == "jti":
        fresh = isinstance(value, str) and value not in world.accepted_jtis
        return fresh and 0 < len(value) <= 2048  # type: ignore[arg-type]
    if name == "iat":
        return good_iat(value, world.clock.time())
    if name == "htu":
        return value in SAME_URL
    return value == world.claims()[name] if name in ("htm", "ath") else True


def claim_values(name: str) -> st.SearchStrategy[object]:
    plausible: dict[str, list[object]] = {
        "htm": ["GET", "get", "POST", "HEAD", " GET"],
        "htu": [*SAME_URL, *OTHER_URL],
        "iat": [0, -1, 2**53, 1e308, True, "now", 1.5],
        "ath": ["", "x", "A" * 43],
        "jti": ["", "x" * 2049, "a-jti"],
    }
    return json_values | printable | st.sampled_from(plausible.get(name, [None]))


@st.composite
def mutated(draw: st.DrawFn, world: World) -> tuple[str, bool]:
    """A proof with one mutation, and whether it must still be accepted."""
    header, claims = world.header(), world.claims()
    kind = draw(st.sampled_from(["header", "drop-header", "claim", "drop-claim", "signature"]))
    signer, passes = world.key, True
    if kind == "header":
        name = draw(st.sampled_from(["typ", "alg", "jwk"]))
        bad_jwk = [
            world.other.public_jwk,
            world.key.private_jwk(),
            {**world.key.public_jwk, "x": world.other.public_jwk["x"]},
            {**world.key.public_jwk, "kty": "RSA"},
            {"kty": "oct", "k": "c2VjcmV0"},
        ]
        options = {
            "typ": ["JWT", "at+jwt", "DPoP+JWT", "dpop+jwt "],
            "alg": ["none", "HS256", "RS256", "ES384", "EdDSA"],
        }.get(name, bad_jwk)
        value = draw(json_values | printable | st.sampled_from(options))
        passes = value == header[name]
        header[name] = value
        if name == "jwk" and value == world.other.public_jwk and draw(st.booleans()):
            signer = world.other  # a proof made in full with another key
    elif kind == "drop-header":
        del header[draw(st.sampled_from(sorted(header)))]
        passes = False
    elif kind == "claim":
        name = draw(st.sampled_from([*sorted(claims), "nonce", "exp", "extra"]))
        value = draw(claim_values(name))
        passes = good_claim(world, name, value)
        claims[name] = value
    elif kind == "drop-claim":
        del claims[draw(st.sampled_from(sorted(claims)))]
        passes = False
    proof = sign(signer, header, claims)
    if kind == "signature":
        body, _, signature = proof.rpartition(".")
        raw = bytearray(base64url_decode(signature))
        how = draw(st.sampled_from(["flip", "truncate", "empty", "other-key", "garbage"]))
        if how == "flip":
            index = draw(st.integers(0, len(raw) - 1))
            raw[index] ^= draw(st.integers(1, 255))
            proof = f"{body}.{b64(bytes(raw))}"
        elif how == "truncate":
            proof = f"{body}.{b64(bytes(raw[: draw(st.integers(0, len(raw) - 1))]))}"
        elif how == "empty":
            proof = f"{body}."
        elif how == "other-key":
            proof = f"{body}.{sign(world.other, header, claims).rpartition('.')[2]}"
        else:
            proof = f"{body}.{draw(printable)}"
        passes = False
    if passes:
        world.accepted_jtis.add(claims["jti"])
    return proof, passes


@FUZZ
@given(data=st.data())
def test_a_mutated_proof_is_accepted_only_when_still_valid(
    world: World, data: st.DataObject
) -> None:
    proof, passes = data.draw(mutated(world))
    event(f"accepted={passes}")
    headers = {"Authorization": f"DPoP {world.token}", "DPoP": proof}
    response = world.client.get(PATH, headers=headers)
    assert response.status_code < 500
    if passes:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401, proof
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert 'DPoP error="invalid_dpop_proof"' in response.headers["www-authenticate"]


@FUZZ
@given(proof=printable)
def test_any_dpop_header_is_refused_cleanly(world: World, proof: str) -> None:
    headers = {"Authorization": f"DPoP {world.token}", "DPoP": proof}
    response = world.client.get(PATH, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"
