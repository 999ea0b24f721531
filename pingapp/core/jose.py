"""Strict compact JWS (RFC 7515 section 7.1), for the tokens this app verifies.

PyJWT's parser accepts `=` padding and, since 2.10, checks each segment's alphabet
one character at a time in Python: under load that loop cost the API more than the
RSA signature check. The API's access tokens and DPoP proofs are read here instead:
every segment must be canonical unpadded base64url (one spelling per value, so a
token cannot be re-spelled into a new cache key or a new `jti`), checked by a regular
expression and a round trip through PyJWT's own base64url functions; the signature
is checked by PyJWT's algorithm for the key (`PyJWK.Algorithm`).
"""

from __future__ import annotations

import re

from jwt import PyJWK
from jwt.exceptions import PyJWTError
from jwt.utils import base64url_decode, base64url_encode

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def decode_segment(segment: str) -> bytes:
    """The bytes of one segment; `ValueError` unless it is canonical, unpadded base64url."""
    if not segment or len(segment) % 4 == 1 or not _BASE64URL.fullmatch(segment):
        raise ValueError("not one canonical base64url segment")
    raw = base64url_decode(segment)
    if base64url_encode(raw) != segment.encode():  # stray bits in the last character
        raise ValueError("not one canonical base64url segment")
    return raw


def signature_valid(token: str, key: PyJWK) -> bool:
    """Whether the signature of the compact JWS `token` checks out with `key`, by
    the key's own algorithm (the caller has matched it to the header's `alg`)."""
    signing_input, _, signature = token.rpartition(".")
    try:
        return key.Algorithm.verify(signing_input.encode(), key.key, decode_segment(signature))
    except (PyJWTError, ValueError):
        return False
