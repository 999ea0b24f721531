"""Reading a compact JWS access token, before and while its signature is checked.

`read_header` refuses what is not one strictly spelled compact JWS (three
base64url segments without padding, each in its one canonical spelling; a JSON
object as header) and gives the header, unverified. `verified_claims` checks the
signature with a key from the issuer's key set and gives the payload, a JSON
object. Both use PyJWT's parser; what it leaves open (`=` padding, a header
extension) is refused here. Every refusal is a `TokenRefused` whose fixed text
never contains the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import InvalidSignatureError, PyJWTError

#: Tokens longer than this are refused before any parsing (a generous bound:
#: Auth0 tokens with many permissions stay well under 8 KiB).
MAX_TOKEN_LENGTH = 16 * 1024

#: A compact JWS: three base64url segments without padding.
_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

#: `typ` values an access token may carry (RFC 9068 section 2.1), lower case
#: and without `application/`. Anything else (`id_token+jwt`, `logout+jwt`...)
#: is another kind of token.
AT_TYP = "at+jwt"
GENERIC_TYP = "jwt"

_JWS = jwt.PyJWS()


class TokenRefused(Exception):
    """Why a token was refused; the text is fixed and never contains the token."""


def read_header(token: str) -> dict[str, Any]:
    """The token's header, not yet trusted; `TokenRefused` if the token is malformed,
    or uses a header extension (`crit`, `b64`) this API does not implement."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused("the token is too long")
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        raise TokenRefused("malformed token")
    try:
        # The header segment alone: PyJWT's parser would also decode the payload
        # and signature, work an unknown kid or a refused `typ` never needs;
        # `verified_claims` decodes them, once, after the key is found.
        header = _JWS.get_unverified_header(match.group(1) + "..")
    except PyJWTError:
        raise TokenRefused("malformed token") from None
    if "crit" in header or "b64" in header:
        raise TokenRefused("the token uses an unsupported header extension")
    return header


def typ_of(header: Mapping[str, Any]) -> str | None:
    """The header's `typ`, lower case and without `application/` (None when absent)."""
    typ = header.get("typ")
    if typ is None:
        return None
    if not isinstance(typ, str):
        raise TokenRefused("the token's 'typ' is not valid")
    return typ.lower().removeprefix("application/")


def verified_claims(token: str, key: PyJWK) -> dict[str, Any]:
    """The payload of `token` once its signature checks out with `key` (whose
    algorithm must be the header's); `TokenRefused` otherwise."""
    try:
        decoded = _JWS.decode_complete(token, key=key, algorithms=[key.algorithm_name])
    except InvalidSignatureError:
        raise TokenRefused("the token's signature is not valid") from None
    except (PyJWTError, ValueError, TypeError):
        raise TokenRefused("malformed token") from None
    try:
        claims = json.loads(decoded["payload"])
    except (ValueError, RecursionError):
        raise TokenRefused("malformed token") from None
    if not isinstance(claims, dict):
        raise TokenRefused("malformed token")
    return claims
