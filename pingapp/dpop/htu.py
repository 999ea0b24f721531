"""The `htu` of a DPoP proof: a request's URL in the one form two sides compare."""

from __future__ import annotations

import functools
import re

import httpx2

_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escape(match: re.Match[str]) -> str:
    byte = int(match.group()[1:], 16)
    return chr(byte) if byte in _UNRESERVED else match.group().upper()


@functools.lru_cache(maxsize=1024)
def normalize_htu(url: str) -> str:
    """`url` as a proof's `htu` is compared (RFC 9449 §4.3, RFC 3986 §6.2.2 and §6.2.3).

    Query and fragment dropped; scheme and host in lower case; default port removed;
    an empty path is `/`; dot segments resolved; percent-escapes in upper case, and
    decoded when they stand for an unreserved character. `ValueError` for anything but
    an absolute `http`/`https` URL without user information.
    """
    try:
        # Escapes first, so that an escaped dot segment is resolved like a plain one.
        parsed = httpx2.URL(_PERCENT.sub(_normal_escape, url))
    except (httpx2.InvalidURL, TypeError):
        raise ValueError("not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise ValueError("not an absolute http(s) URL")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise ValueError("not a TCP port")
    path = parsed.raw_path.partition(b"?")[0] or b"/"
    return str(parsed.copy_with(raw_path=path, fragment=None))
