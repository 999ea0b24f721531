"""Server-side sessions, kept in Reflex's own state manager.

A session holds the tokens of one sign-in. It lives in the same store as Reflex's
states (memory or disk in development, Redis when REFLEX_REDIS_URL is set), so every
backend worker can read it, and `modify_state` gives one writer at a time — which is
what makes "one refresh at a time per session" hold across workers.

The browser only ever holds the session id, in an HttpOnly cookie. The store is
keyed by a hash of it, so neither a Redis dump nor a state file reveals a usable id.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from reflex.istate.manager import get_state_manager
from reflex.istate.manager.token import StateToken
from starlette.requests import cookie_parser

COOKIE_NAME = "pingapp_session"
#: How long a one-time ticket that binds a new session to the browser lives.
TICKET_TTL = 60.0


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def _key(kind: str, secret: str) -> str:
    return f"{kind}-{hashlib.sha256(secret.encode()).hexdigest()}"


@dataclasses.dataclass
class ServerSession:
    """One sign-in: tokens and what the page may show of them."""

    access_token: str = ""
    refresh_token: str = ""
    id_token: str = ""
    #: Epoch seconds at which the access token expires (0: unknown).
    expires_at: float = 0.0
    scope: str = ""
    claims: dict[str, Any] = dataclasses.field(default_factory=dict)
    profile: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Reflex client tokens (browser tabs) showing this session, to sign out together.
    tabs: list[str] = dataclasses.field(default_factory=list)
    revoked: bool = False

    @property
    def active(self) -> bool:
        return bool(self.access_token) and not self.revoked

    def end(self) -> None:
        """Forget every token; the id no longer signs anyone in."""
        self.access_token = self.refresh_token = self.id_token = ""
        self.revoked = True


@dataclasses.dataclass
class BindTicket:
    """A one-time, short-lived handle that lets the browser fetch its cookie."""

    session_id: str = ""
    return_to: str = "/"
    expires_at: float = 0.0


@contextlib.asynccontextmanager
async def modify_session(session_id: str) -> AsyncIterator[ServerSession]:
    """The session, locked for writing (one writer per session, every worker)."""
    token = StateToken(ident=_key("session", session_id), cls=ServerSession)
    async with get_state_manager().modify_state(token) as session:
        yield session


async def read_session(session_id: str) -> ServerSession | None:
    """The session if it is active, without holding its lock."""
    if not session_id:
        return None
    token = StateToken(ident=_key("session", session_id), cls=ServerSession)
    session = await get_state_manager().get_state(token)
    return session if session.active else None


async def issue_ticket(session_id: str, return_to: str) -> str:
    ticket = secrets.token_urlsafe(32)
    token = StateToken(ident=_key("ticket", ticket), cls=BindTicket)
    async with get_state_manager().modify_state(token) as record:
        record.session_id = session_id
        record.return_to = return_to
        record.expires_at = time.time() + TICKET_TTL
    return ticket


async def redeem_ticket(ticket: str) -> BindTicket | None:
    """The ticket's content, once: a second redemption gets None."""
    token = StateToken(ident=_key("ticket", ticket), cls=BindTicket)
    async with get_state_manager().modify_state(token) as record:
        found = dataclasses.replace(record)
        record.session_id = ""
        record.expires_at = 0.0
    if not found.session_id or found.expires_at < time.time():
        return None
    return found


def session_id_from_cookie_header(header: str) -> str:
    """Our cookie's value from a `Cookie:` header, or ''."""
    return cookie_parser(header).get(COOKIE_NAME, "")
