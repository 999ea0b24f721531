"""A session's access token, renewed when needed: the decision, as a value.

`current_token` looks at one session and answers with a `TokenOutcome`: the
token is fresh, was refreshed, or cannot be had (the session expired, the
provider revoked it, the API rejected a token that cannot be renewed, the
provider is down). It edits only the session; what the page shows of each
outcome is the caller's business (`AuthState`). Plain code with an injected
clock, testable without Reflex.

Refresh runs under the session's lock, one at a time per session on every
worker; whoever waited for it finds the fresh token (docs/security.md 23).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Callable
from typing import Any, Protocol

from pingapp import telemetry
from pingapp.dpop import DPoPKey
from pingapp.oidc.dpop import bound_jkt
from pingapp.oidc.errors import GrantRejected, LoginError
from pingapp.oidc.session import ServerSession, Vault
from pingapp.outbound.http import Credential

#: Refresh the access token when it has less than this many seconds left.
REFRESH_MARGIN = 30


class Outcome(enum.Enum):
    #: The stored token is good (or the only one there is).
    FRESH = "fresh"
    #: The provider gave a new token; the session holds it.
    REFRESHED = "refreshed"
    #: The token expired and there is no refresh token: the session has ended.
    EXPIRED = "expired"
    #: The provider refused the refresh token (`invalid_grant`): the session has ended.
    REVOKED = "revoked"
    #: The API refused the token, and there is no refresh token to renew it.
    REJECTED = "rejected"
    #: The provider could not be reached to refresh; the session stays.
    PROVIDER_DOWN = "provider_down"
    #: This connection has no live session.
    NO_SESSION = "no_session"


@dataclasses.dataclass(frozen=True)
class TokenOutcome:
    kind: Outcome
    #: The access token to send, or None.
    token: str | None = None
    #: The session as it now is, for REFRESHED.
    session: ServerSession | None = None
    #: The DPoP key the token is bound to (`DPoPKey.to_json`), or '' for a bearer token.
    dpop_key: str = ""

    @property
    def credential(self) -> Credential | None:
        """The token as `TokenAuth` sends it (with its key when bound), or None."""
        if not self.token:
            return None
        return Credential(self.token, DPoPKey.from_json(self.dpop_key) if self.dpop_key else None)

    @property
    def ended(self) -> bool:
        """Whether the session is gone (the page shows the signed-out view)."""
        return self.kind in {Outcome.EXPIRED, Outcome.REVOKED, Outcome.NO_SESSION}


class Refresher(Protocol):
    async def refresh(self, refresh_token: str, *, dpop_key: str = "") -> dict[str, Any]: ...


def _usable(kind: Outcome, session: ServerSession, *, changed: bool = False) -> TokenOutcome:
    """An outcome with the session's access token (and its key, when bound); `changed`:
    the outcome carries the session too."""
    key = session.dpop_key if session.dpop_jkt else ""
    return TokenOutcome(kind, session.access_token, session if changed else None, key)


def expiring(session: ServerSession, now: float) -> bool:
    """Whether the access token has less than REFRESH_MARGIN seconds left."""
    return bool(session.expires_at) and session.expires_at - REFRESH_MARGIN <= now


def expired(session: ServerSession, now: float) -> bool:
    """Whether the access token expired and cannot be renewed."""
    return 0 < session.expires_at < now and not session.refresh_token


def apply_tokens(session: ServerSession, tokens: dict[str, Any], now: float) -> None:
    """Put a refresh answer into the session (a rotated refresh token replaces the old)."""
    session.access_token = tokens["access_token"]
    session.refresh_token = str(tokens.get("refresh_token") or session.refresh_token)
    session.expires_at = now + float(tokens.get("expires_in", 0) or 0)
    session.scope = str(tokens.get("scope") or session.scope)
    # A provider may answer a proof with a bearer token: then it is used as one.
    session.dpop_jkt = bound_jkt(tokens, session.dpop_key)
    if isinstance(tokens.get("id_token"), str):
        session.id_token = tokens["id_token"]


def _refresh_failed(session: ServerSession, session_hash: str, reason: str, *, ended: bool) -> None:
    """Telemetry of a token that could not be renewed (`ended`: the session is gone)."""
    telemetry.refresh_finished("failure", reason=reason)
    telemetry.audit(
        "refresh_failed",
        outcome="failure",
        user=str(session.claims.get("sub", "")),
        session=session_hash,
        reason=reason,
    )
    if ended:
        telemetry.session_ended()


async def current_token(
    vault: Vault,
    provider: Refresher,
    session_hash: str,
    *,
    rejected: str | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenOutcome:
    """A valid access token for the session `session_hash`, refreshed when about to
    expire or when the API just `rejected` it; the outcome says what happened.
    With telemetry on, the look-up is the span `pingapp.token` (and a refresh at
    the provider its child `pingapp.token.refresh`)."""
    with telemetry.span("pingapp.token") as span:
        outcome = await _current_token(vault, provider, session_hash, rejected, clock)
        span.set_attribute("pingapp.token.outcome", outcome.kind.value)
        return outcome


async def _current_token(
    vault: Vault,
    provider: Refresher,
    session_hash: str,
    rejected: str | None,
    clock: Callable[[], float],
) -> TokenOutcome:
    session = await vault.load(session_hash)  # the fast path reads without the lock
    if session is None:
        return TokenOutcome(Outcome.NO_SESSION)
    if rejected is None and not expiring(session, clock()):
        return _usable(Outcome.FRESH, session)
    async with vault.modify(session_hash) as session:
        if session is None:
            return TokenOutcome(Outcome.NO_SESSION)
        stale = session.access_token == rejected or (
            rejected is None and expiring(session, clock())
        )
        if not stale:  # renewed by whoever held the lock before
            return _usable(Outcome.FRESH, session)
        if not session.refresh_token:
            if rejected is not None:
                _refresh_failed(session, session_hash, "no_refresh_token", ended=False)
                return TokenOutcome(Outcome.REJECTED)
            if expired(session, clock()):
                session.access_token = ""  # saved as ended: the record goes
                _refresh_failed(session, session_hash, "expired", ended=True)
                return TokenOutcome(Outcome.EXPIRED)
            return _usable(Outcome.FRESH, session)
        try:
            with telemetry.span("pingapp.token.refresh"):
                tokens = await provider.refresh(session.refresh_token, dpop_key=session.dpop_key)
        except GrantRejected:
            session.access_token = ""
            _refresh_failed(session, session_hash, "revoked", ended=True)
            return TokenOutcome(Outcome.REVOKED)
        except LoginError:
            _refresh_failed(session, session_hash, "provider_unavailable", ended=False)
            # Provider down or slow: keep the session, use the token while it lasts.
            if rejected is None and session.expires_at > clock():
                return _usable(Outcome.PROVIDER_DOWN, session)
            return TokenOutcome(Outcome.PROVIDER_DOWN)
        apply_tokens(session, tokens, clock())
        telemetry.refresh_finished("success")
        return _usable(Outcome.REFRESHED, session, changed=True)
