"""Where a bearer token may go: API_ALLOWED_ORIGINS, parsed once (`Allowlist`).

Each entry is an exact origin (scheme, host and port), optionally narrowed to a
path prefix; `TokenAuth` (`pingapp.outbound.http`) checks every request and every
redirect hop against it (docs/security.md item 21). The allowlist plays the role of
angular-jwt's `whiteListedDomains`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx2

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Encoded `.`, `/` or `\` (or a raw `\`) in a path: a server may decode them into
#: `../` and leave the allowed prefix, so such paths never match a prefix.
_PATH_TRICKS = re.compile(r"%2e|%2f|%5c|\\", re.IGNORECASE)


def _port(url: httpx2.URL) -> int:
    """The port a URL really uses (httpx reports default ports as None)."""
    return url.port or _DEFAULT_PORTS[url.scheme]


def _raw_path(url: httpx2.URL) -> str:
    """The path as sent on the wire: still percent-encoded, without the query."""
    return url.raw_path.partition(b"?")[0].decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class AllowedTarget:
    """One allowlist entry: an exact origin, optionally narrowed to a path prefix.

    Hosts are compared as httpx sends them: lower case, IDNA-encoded. So a
    look-alike Unicode host, a percent-encoded host, a longer host ending in an
    allowed one, or a URL with `allowed@` user information never matches.
    """

    scheme: str
    host: bytes
    port: int
    #: "" for the whole origin, else e.g. "/v1" (allows /v1 and /v1/..., not /v10).
    path: str

    @classmethod
    def parse(cls, entry: str) -> AllowedTarget:
        try:
            url = httpx2.URL(entry)
        except httpx2.InvalidURL as error:
            msg = f"an allowed origin must be a valid URL, got {entry!r}: {error}"
            raise ValueError(msg) from None
        if url.scheme not in _DEFAULT_PORTS or not url.raw_host:
            msg = f"an allowed origin must be an absolute http(s) URL, got {entry!r}"
            raise ValueError(msg)
        if url.userinfo or url.query or url.fragment:
            msg = f"an allowed origin must not have user information, query or fragment: {entry!r}"
            raise ValueError(msg)
        path = _raw_path(url).rstrip("/")
        if _PATH_TRICKS.search(path):
            msg = f"an allowed path prefix must not contain encoded '.', '/' or '\\': {entry!r}"
            raise ValueError(msg)
        return cls(url.scheme, url.raw_host, _port(url), path)

    def matches(self, url: httpx2.URL) -> bool:
        if url.scheme != self.scheme:
            return False
        if (url.raw_host, _port(url)) != (self.host, self.port):
            return False
        if not self.path:
            return True
        path = _raw_path(url)
        if _PATH_TRICKS.search(path):
            return False
        return path == self.path or path.startswith(self.path + "/")


class Allowlist:
    """The URLs a bearer token may be sent to (API_ALLOWED_ORIGINS, parsed once).

    `Allowlist(get_settings().allowed_origins(backend_url()))`; an empty list
    allows nothing. A bad entry raises ValueError when the list is built.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.targets = tuple(AllowedTarget.parse(entry) for entry in entries)

    def allows(self, url: httpx2.URL | str) -> bool:
        url = httpx2.URL(url)
        return url.scheme in _DEFAULT_PORTS and any(t.matches(url) for t in self.targets)
