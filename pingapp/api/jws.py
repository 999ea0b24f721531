"""Reading a compact JWS access token, before and while its signature is checked.

`read_header` refuses what is not one strictly spelled compact JWS (three
base64url segments without padding, each in its one canonical spelling; a JSON
object as header) and gives the header, unverified. `verified_claims` checks the
signature with a key from the issuer's key set and gives the payload, a JSON
object. Segments and signatures go through `pingapp.core.jose` (PyJWT's algorithms,
without its parser's per-character loop); a header extension is refused. Every
refusal is a `TokenRefused` whose fixed text never contains the token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jwt import PyJWK

from pingapp.core.jose import decode_segment, signature_valid

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
        # The header segment alone: the payload and signature wait until
        # `verified_claims`, which an unknown kid or a refused `typ` never reaches.
        header = json.loads(decode_segment(match.group(1)))
    except (ValueError, RecursionError):
        raise TokenRefused("malformed token") from None
    if not isinstance(header, dict) or not isinstance(header.get("kid", ""), str):
        raise TokenRefused("malformed token")
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


def verified_claims(token: str, header: Mapping[str, Any], key: PyJWK) -> dict[str, Any]:
    """The payload of `token` (whose `header` is `read_header`'s) once its signature
    checks out with `key`, whose algorithm must be the header's; `TokenRefused`
    otherwise."""
    if header.get("alg") != key.algorithm_name:
        raise TokenRefused("the token's algorithm does not match its key")
    if not signature_valid(token, key):
        raise TokenRefused("the token's signature is not valid")
    try:
        claims = json.loads(decode_segment(token.split(".")[1]))
    except (ValueError, RecursionError):
        raise TokenRefused("malformed token") from None
    if not isinstance(claims, dict):
        raise TokenRefused("malformed token")
    return claims
