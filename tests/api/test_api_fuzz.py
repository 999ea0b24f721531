"""Arbitrary headers and tokens never make the API answer 5xx (property-based)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.api import make_api, make_verifier
from tests.support.clock import FakeClock
from tests.support.fuzz import FUZZ, Client, json_values, printable
from tests.support.issuers import Issuer, Key, Minter, start_server

PATHS = ["/public", "/private", "/private-scoped"]


@pytest.fixture(scope="module")
def world(keys: list[Key]) -> Iterator[tuple[Client, Minter]]:
    issuer = Issuer()
    issuer.publish(keys[0])
    server = start_server(issuer)
    clock = FakeClock()
    verifier = make_verifier(issuer, clock)
    loop = asyncio.new_event_loop()
    transport = httpx2.ASGITransport(app=make_api(verifier))
    client = httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1")
    yield Client(loop, client), Minter(issuer, keys[0], clock)
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(verifier.aclose())
    loop.close()
    server.stop()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


headers = st.dictionaries(
    st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku", "jwk", "x5c", "zip"]),
    json_values | st.sampled_from(["RS256", "none", "HS256", "key-1", "at+jwt"]),
)
claims = st.dictionaries(
    st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "scope", "scp", "permissions", "sub"]),
    json_values,
)


@st.composite
def jwt_like(draw: st.DrawFn) -> str:
    """Three segments from arbitrary JSON, bytes or text: parsers' favourite food."""
    header = b64(json.dumps(draw(headers)).encode())
    payload = b64(json.dumps(draw(claims), allow_nan=True).encode())
    parts = [header, payload, b64(draw(st.binary(max_size=300)))]
    if draw(st.booleans()):
        index = draw(st.integers(0, 2))
        parts[index] = draw(st.text(st.sampled_from("AZaz09-_=+/.~ "), max_size=60))
    return ".".join(parts)


@FUZZ
@given(path=st.sampled_from(PATHS), value=printable)
def test_any_authorization_header(world: tuple[Client, Minter], path: str, value: str) -> None:
    client, _ = world
    response = client.get(path, headers={"Authorization": value})
    assert response.status_code < 500
    assert response.status_code in {200, 400, 401, 403}
    if path != "/public" and response.status_code != 200:
        assert response.headers["www-authenticate"].startswith("Bearer")


@FUZZ
@given(path=st.sampled_from(PATHS), token=jwt_like() | printable)
def test_any_token(world: tuple[Client, Minter], path: str, token: str) -> None:
    client, _ = world
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in {200, 400, 401, 403}
    if path != "/public":
        assert response.status_code != 200  # none of these is signed by the issuer


@FUZZ
@given(data=st.data())
def test_any_change_to_a_valid_token_is_refused(
    world: tuple[Client, Minter], data: st.DataObject
) -> None:
    client, mint = world
    token = mint.token()
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("ABCDEFabcdef0123456789-_.="))
    changed = token[:position] + replacement + token[position + 1 :]
    response = client.get("/private", headers={"Authorization": f"Bearer {changed}"})
    if changed == token:
        assert response.status_code == 200
    else:
        assert response.status_code in {400, 401}


@FUZZ
@given(path=st.sampled_from(PATHS), query=st.dictionaries(printable, printable, max_size=3))
def test_any_query(world: tuple[Client, Minter], path: str, query: dict[str, str]) -> None:
    client, mint = world
    response = client.get(path, params=query, headers={"Authorization": f"Bearer {mint.token()}"})
    assert response.status_code in {200, 400}
