"""pingapp.core.jose: one spelling per segment, and signatures checked by the key's own
algorithm. The API's and DPoP's tests check the same rules through their boundaries."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm

from pingapp.core.jose import decode_segment, signature_valid

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def es256_pair() -> tuple[ec.EllipticCurvePrivateKey, PyJWK]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    return private, PyJWK({**public, "alg": "ES256"})


@pytest.mark.parametrize("raw", [b"x", b"xy", b"xyz", bytes(range(256)), b'{"alg":"ES256"}'])
def test_a_canonical_segment_decodes_to_its_bytes(raw: bytes) -> None:
    assert decode_segment(b64(raw)) == raw


@pytest.mark.parametrize(
    "segment",
    [
        "",  # nothing
        "eA==",  # padding
        "eA=",
        "eB",  # "x" with stray bits in its last character
        "eHk+",  # standard base64, not base64url
        "eHk/",
        "eHl6e",  # a length no encoding has (4n + 1)
        "eH k",  # whitespace
        "eHl6\n",
        "eHl6é",
    ],
)
def test_anything_else_is_refused(segment: str) -> None:
    with pytest.raises(ValueError, match="canonical"):
        decode_segment(segment)


def test_every_spelling_of_the_same_bytes_but_one_is_refused() -> None:
    canonical = b64(b"\x00\xff")  # 16 bits: the last character carries 2 unused ones
    spellings = [canonical[:-1] + c for c in ALPHABET]
    decoded = [base64.urlsafe_b64decode(s + "=") for s in spellings]
    same = [s for s, raw in zip(spellings, decoded, strict=True) if raw == b"\x00\xff"]
    assert len(same) == 4  # what a lax decoder accepts
    assert [s for s in same if _accepted(s)] == [canonical]


def _accepted(segment: str) -> bool:
    try:
        decode_segment(segment)
    except ValueError:
        return False
    return True


def test_a_signature_is_valid_only_for_its_key_and_its_signing_input() -> None:
    private, key = es256_pair()
    _, other = es256_pair()
    token = jwt.encode({"sub": "alice"}, private, algorithm="ES256")
    assert signature_valid(token, key)
    assert not signature_valid(token, other)
    header, payload, signature = token.split(".")
    assert not signature_valid(f"{header}.{b64(b'{}')}.{signature}", key)
    assert not signature_valid(f"{header}.{payload}.{signature}=", key)  # padded
    assert not signature_valid(f"{header}.{payload}.", key)  # no signature
    assert not signature_valid(f"{header}.{payload}.{b64(b'short')}", key)  # wrong length
