"""Our cookies and the secrets they carry: names, hashing, reading.

The browser holds a session id and a login binding in HttpOnly cookies; the
server keeps only their SHA-256 (`digest`). The app's ASGI layer replaces our
cookies' values by their digests in the event websocket's handshake
(`digest_our_cookies`), so Reflex's tab states never hold a cookie's value.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import cookie_parser

SESSION_COOKIE = "pingapp_session"
LOGIN_COOKIE = "pingapp_login"


def new_secret() -> str:
    """A random, URL-safe secret (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 of a secret: what the store and the tab state keep instead of it."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(secret: str, expected_digest: str) -> bool:
    """Whether `secret` hashes to `expected_digest`, compared in constant time."""
    return bool(secret and expected_digest) and hmac.compare_digest(digest(secret), expected_digest)


def cookie_name(base: str, *, secure: bool) -> str:
    """`__Host-<base>` over https (Secure, Path=/, no Domain: one host only), else `base`."""
    return f"__Host-{base}" if secure else base


def read_cookie(header: str, base: str, *, secure: bool) -> str:
    """One of our cookies from a `Cookie:` header, or ''."""
    return cookie_parser(header).get(cookie_name(base, secure=secure), "")


def digest_our_cookies(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` with our cookies' values replaced by their digest().

    Applied to the event websocket's handshake: Reflex keeps the handshake's headers
    in every tab's state (and so in its state files or Redis), and event handlers
    need no more than the digest, which is what the store is keyed by. A digest
    sent back as a cookie is hashed again, so it signs nobody in."""
    ours = {
        cookie_name(base, secure=secure)
        for base in (SESSION_COOKIE, LOGIN_COOKIE)
        for secure in (False, True)
    }
    rewritten = []
    for name, value in headers:
        if name.lower() == b"cookie":
            cookies = cookie_parser(value.decode("latin-1"))
            value = "; ".join(
                f"{key}={digest(item) if key in ours else item}" for key, item in cookies.items()
            ).encode("latin-1")
        rewritten.append((name, value))
    return rewritten
