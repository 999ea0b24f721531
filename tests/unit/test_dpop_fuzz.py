"""Property-based fuzz of `pingapp.dpop.check_proof`: a valid proof with its header, claims
and signature mutated is never accepted unless every RFC 9449 check still holds (an
oracle re-checks each one), never raises anything but `DPoPError`, and is never
accepted twice."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import get_default_algorithms

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.dpop import (
    DPoPError,
    DPoPKey,
    MemoryReplayCache,
    check_proof,
    jwk_thumbprint,
    normalize_htu,
    token_hash,
)

NOW = 1_800_000_000
URL = "https://api.example.org/api/private"
TOKEN = "an-access-token"
NONCE = "server-nonce"
WINDOW = 60
SKEW = 5  # seconds an `iat` may be ahead
ALLOWED = ("ES256", "EdDSA", "RS256")
KEY = DPoPKey.generate()
OTHER = DPoPKey.generate("EdDSA")
PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)

jwks = st.one_of(
    st.just(KEY.public_jwk),
    st.just(OTHER.public_jwk),
    st.builds(
        lambda m: {**KEY.public_jwk, m: KEY.private_jwk()["d"]}, st.sampled_from(sorted(PRIVATE))
    ),
    st.builds(
        lambda m, v: {**KEY.public_jwk, m: v},
        st.sampled_from(["kty", "crv", "x", "y", "alg", "use"]),
        json_values | st.sampled_from(["EC", "OKP", "RSA", "oct", "P-384", "Ed25519", "AA"]),
    ),
    st.builds(lambda m: {k: v for k, v in KEY.public_jwk.items() if k != m}, st.sampled_from("xy")),
    json_values,
)

header_values = {
    "typ": st.sampled_from(["dpop+jwt", "JWT", "DPoP+JWT", "dpop+jwt ", ""]) | json_values,
    "alg": st.sampled_from(["ES256", "ES384", "EdDSA", "RS256", "HS256", "none", "NONE", ""])
    | json_values,
    "jwk": jwks,
    "crit": st.sampled_from([["b64"], ["exp"], []]) | json_values,
    "b64": st.just(False) | json_values,
    "kid": json_values,
}

claim_values = {
    "jti": st.text(max_size=8) | json_values,
    "htm": st.sampled_from(["GET", "POST", "get", "GET "]) | json_values,
    "htu": st.sampled_from(
        [
            URL,
            URL.upper(),
            URL + "?q=1#f",
            "https://api.example.org:443/api/private",
            "https://api.example.org/api/public",
            "http://api.example.org/api/private",
            "https://evil.example/api/private",
            "https://api.example.org/api/%70rivate",
        ]
    )
    | st.text(max_size=20)
    | json_values,
    "iat": st.integers(NOW - 2 * WINDOW, NOW + 2 * WINDOW)
    | st.floats(NOW - 2 * WINDOW, NOW + 2 * WINDOW)
    | json_values,
    "ath": st.sampled_from([token_hash(TOKEN), token_hash(TOKEN + "x"), ""]) | json_values,
    "nonce": st.sampled_from([NONCE, NONCE.upper(), ""]) | json_values,
}


def changes(values: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[list]:
    """A few edits: set a member to a value, or delete it."""
    one = st.one_of(
        *(st.tuples(st.just(name), strategy) for name, strategy in values.items()),
        st.tuples(st.sampled_from(sorted(values)), st.just(DELETE)),
        st.tuples(st.text(max_size=4), json_values),
    )
    return st.lists(one, max_size=3)


DELETE = object()


def edited(base: dict[str, Any], edits: list) -> dict[str, Any]:
    result = dict(base)
    for name, value in edits:
        if value is DELETE:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def signed(header: dict[str, Any], claims: dict[str, Any], signer: DPoPKey) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    signature = get_default_algorithms()[signer.alg].sign(
        f"{head}.{body}".encode(), signer.private_key
    )
    return f"{head}.{body}.{b64(signature)}"


def valid_parts() -> tuple[dict[str, Any], dict[str, Any]]:
    header = {"typ": "dpop+jwt", "alg": KEY.alg, "jwk": KEY.public_jwk}
    claims = {
        "jti": "j-1",
        "htm": "GET",
        "htu": URL,
        "iat": NOW,
        "ath": token_hash(TOKEN),
        "nonce": NONCE,
    }
    return header, claims


proofs = st.builds(
    lambda header_edits, claim_edits, signer: signed(
        edited(valid_parts()[0], header_edits), edited(valid_parts()[1], claim_edits), signer
    ),
    changes(header_values),
    changes(claim_values),
    st.sampled_from([KEY, KEY, OTHER]),
)


@st.composite
def one_edit(draw: st.DrawFn) -> str:
    """A valid proof with one member of its header or its claims changed, signed by KEY."""
    header, claims = valid_parts()
    in_header = draw(st.booleans())
    values = header_values if in_header else claim_values
    name = draw(st.sampled_from(sorted(values)))
    edit = [(name, draw(values[name] | st.just(DELETE)))]
    if in_header:
        return signed(edited(header, edit), claims, KEY)
    return signed(header, edited(claims, edit), KEY)


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A valid proof (or a mutated one) with its text or signature damaged."""
    proof = draw(proofs)
    head, body, signature = proof.split(".")
    how = draw(st.sampled_from(["flip", "replace", "swap", "text"]))
    if how == "flip":
        raw = bytearray(unb64(signature))
        raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
        return f"{head}.{body}.{b64(bytes(raw))}"
    if how == "replace":
        return f"{head}.{body}.{b64(draw(st.binary(max_size=80)))}"
    if how == "swap":
        other = signed(*valid_parts(), KEY)
        return f"{head}.{body}.{other.split('.')[2]}"
    at = draw(st.integers(0, len(proof)))
    return proof[:at] + draw(st.text(max_size=3)) + proof[at + draw(st.integers(0, 3)) :]


def oracle_accepts(proof: str) -> bool:
    """Every RFC 9449 §4.3 check, done again independently of `pingapp.dpop`."""
    try:
        head, body, _ = proof.split(".")
        header, claims = json.loads(unb64(head)), json.loads(unb64(body))
    except (ValueError, binascii.Error):
        return False
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return False
    jwk, alg = header.get("jwk"), header.get("alg")
    if header.get("typ") != "dpop+jwt" or alg not in ALLOWED or alg not in ASYMMETRIC_ALGORITHMS:
        return False
    if not isinstance(jwk, dict) or PRIVATE & jwk.keys():
        return False
    try:
        if jwk_thumbprint(jwk) != KEY.jkt:
            return False
        jwt.api_jws.decode(proof, jwt.PyJWK(jwk, alg), algorithms=[alg])
    except (ValueError, jwt.PyJWTError):
        return False
    htu, iat = claims.get("htu"), claims.get("iat")
    try:
        same_url = isinstance(htu, str) and normalize_htu(htu) == URL
    except ValueError:
        same_url = False
    return (
        same_url
        and isinstance(claims.get("jti"), str)
        and claims["jti"] != ""
        and claims.get("htm") == "GET"
        and isinstance(iat, int | float)
        and not isinstance(iat, bool)
        and -SKEW <= NOW - iat <= WINDOW
        and claims.get("ath") == token_hash(TOKEN)
        and claims.get("nonce") == NONCE
    )


async def check(proof: str, cache: MemoryReplayCache) -> Any:
    return await check_proof(
        proof,
        method="GET",
        url=URL,
        access_token=TOKEN,
        expected_jkt=KEY.jkt,
        nonce=NONCE,
        allowed_algs=ALLOWED,
        iat_window=WINDOW,
        clock=lambda: NOW,
        replay=cache,
    )


def assert_refused_or_sound(proof: str) -> None:
    cache = MemoryReplayCache(clock=lambda: NOW)
    try:
        verified = asyncio.run(check(proof, cache))
    except DPoPError as error:
        assert TOKEN not in str(error)
        assert all(part not in str(error) for part in proof.split(".") if len(part) > 8)
        return
    assert oracle_accepts(proof), "a proof failing a check was accepted"
    assert verified.jkt == KEY.jkt
    try:
        asyncio.run(check(proof, cache))
    except DPoPError:
        return
    raise AssertionError("a proof was accepted twice")


def test_the_unmutated_proof_is_accepted_once() -> None:
    proof = signed(*valid_parts(), KEY)
    assert oracle_accepts(proof)
    assert_refused_or_sound(proof)


@SETTINGS
@given(proofs)
def test_mutated_headers_and_claims_are_never_accepted_when_a_check_fails(proof: str) -> None:
    assert_refused_or_sound(proof)


@SETTINGS
@given(one_edit())
def test_each_single_change_is_never_accepted_when_a_check_fails(proof: str) -> None:
    assert_refused_or_sound(proof)


@SETTINGS
@given(damaged())
def test_damaged_signatures_and_text_are_never_accepted(proof: str) -> None:
    assert_refused_or_sound(proof)


@SETTINGS
@given(st.text(max_size=200) | st.builds(".".join, st.lists(st.text(max_size=40), max_size=4)))
def test_arbitrary_text_is_refused_with_the_modules_error(proof: str) -> None:
    assert_refused_or_sound(proof)
