"""Our cookies, and what the server makes of them at the event websocket's handshake.

The browser holds a session id and a login binding in HttpOnly cookies. The server
never keeps either value: it keeps a keyed digest of it (`Vault.reference`, an HMAC
under a server secret), which is also the store's key. Because the digest is keyed,
a store key read from Redis or a file is useless to present: sent as a cookie it is
digested again, and no other way in exists.

Event handlers cannot read our cookies at all (docs/security.md 45). At the websocket
handshake `handshake_scope` reads them with one strict parser, drops every `Cookie`
header the client sent, and puts in their place a header of the server's own
making that holds only the references it computed. It also ties the tab's Reflex
state to the session: the state is stored under a digest of the client token *and*
the session reference (docs/security.md 46), so a client token replayed without its
cookie, or with another user's, finds a fresh state.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.types import Scope

from pingapp.reflex_internals import TAB_PARAM

SESSION_COOKIE = "pingapp_session"
LOGIN_COOKIE = "pingapp_login"
#: What `new_secret()` makes, and so the only value our cookies can hold.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
#: The pairs of the server's own `Cookie` header on the event websocket.
_SESSION_REF, _LOGIN_REF = "pingapp-session-ref", "pingapp-login-ref"
_REF = re.compile(r"[0-9a-f]{64}")


def new_secret() -> str:
    """A random, URL-safe secret (256 bits, 43 characters)."""
    return secrets.token_urlsafe(32)


def cookie_name(base: str, *, secure: bool) -> str:
    """`__Host-<base>` over https (Secure, Path=/, no Domain: one host only), else `base`."""
    return f"__Host-{base}" if secure else base


def read_cookie(headers: Iterable[tuple[bytes, bytes]], base: str, *, secure: bool) -> str:
    """The value of one of our cookies in a request's headers, or ''.

    Strict on purpose (RFC 6265 section 5.4 is what browsers send): pairs split on
    `;`, only spaces and tabs trimmed, the name matched exactly, the value taken as
    sent (no unquoting, no escapes) and accepted only in the form `new_secret`
    makes. A name sent twice with different values (a `Domain=` cookie of a sibling
    host beside ours) names no session at all: nobody can be fixed into another's.
    """
    name = cookie_name(base, secure=secure).encode()
    found: set[bytes] = set()
    for header, value in headers:
        if header.lower() != b"cookie":
            continue
        for pair in value.split(b";"):
            key, sep, item = pair.strip(b" \t").partition(b"=")
            if sep and key == name:
                found.add(item)
    if len(found) != 1:
        return ""
    value = found.pop().decode("latin-1")
    return value if _SECRET.fullmatch(value) else ""


@dataclass(frozen=True)
class HandshakeRefs:
    """What the server computed at an event websocket's handshake."""

    #: `Vault.reference` of the session cookie, or ''.
    session: str = ""
    #: `Vault.reference` of the login cookie, or ''.
    login: str = ""

    def header(self) -> bytes:
        return f"{_SESSION_REF}={self.session}; {_LOGIN_REF}={self.login}".encode()

    @classmethod
    def from_header(cls, header: str) -> HandshakeRefs:
        """Read back `header()` (what handlers see as `router.headers.cookie`)."""
        pairs: dict[str, str] = {}
        for pair in header.split(";"):
            key, _, value = pair.strip().partition("=")
            pairs[key] = value
        session, login = pairs.get(_SESSION_REF, ""), pairs.get(_LOGIN_REF, "")
        return cls(
            session=session if _REF.fullmatch(session) else "",
            login=login if _REF.fullmatch(login) else "",
        )


def handshake_scope(
    scope: Scope, *, secure: bool, reference: Callable[[str], str]
) -> tuple[Scope, HandshakeRefs]:
    """The event websocket's `scope` as Reflex may see it, and the references in it.

    - Every `Cookie` header of the client is removed; one of the server's own,
      holding only `HandshakeRefs`, takes their place. Whatever a client spells in
      its headers, handlers see only what `reference` computed.
    - The `token` query parameter (Reflex's client token, which names the tab's
      stored state) becomes `reference(token, session)`: the state a connection
      reaches belongs to the session its cookie names.
    """
    headers = scope.get("headers", [])
    refs = HandshakeRefs(
        *(
            reference(value) if (value := read_cookie(headers, base, secure=secure)) else ""
            for base in (SESSION_COOKIE, LOGIN_COOKIE)
        )
    )
    kept = [(name, value) for name, value in headers if name.lower() != b"cookie"]
    query = [
        (key, reference(f"tab\x00{value}\x00{refs.session}") if key == TAB_PARAM else value)
        for key, value in parse_qsl(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
    ]
    rewritten = {
        **scope,
        "headers": [*kept, (b"cookie", refs.header())],
        "query_string": urlencode(query).encode("latin-1"),
    }
    return rewritten, refs
