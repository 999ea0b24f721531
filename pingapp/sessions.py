"""SessionsState: the profile page's "where you are signed in" list (docs/sessions.md).

The list is the signed-in user's live sessions, found through the per-user index the
back-channel logout keeps (`Vault.sessions_of`). The page gets each row's browser,
system, times and coarse address, never a session's store reference: those stay in
a backend-only var (`_handles`, never sent to the browser), and the page names a row
by its index. The index means something only in this tab's state, which belongs to
the session its connection's cookie names (docs/security.md 46), and the server
checks again, when it ends a session, that it is the same user's
(`devices.end_owned_session`).
"""

from __future__ import annotations

import logging

import reflex as rx
from redis.exceptions import RedisError

from pingapp.auth.devices import describe_agent, end_owned_session, sessions_of_owner, when
from pingapp.auth.state import AuthState
from pingapp.context import context

logger = logging.getLogger(__name__)


class SessionsState(rx.State):
    """The user's sessions as this tab lists them, and which is being ended."""

    #: One row per session: browser, system, address, signed_in(_iso), last_used(_iso),
    #: current ("1" for this browser's own session, else "").
    rows: list[dict[str, str]] = []  # noqa: RUF012 - Reflex copies defaults per instance
    #: How many of the rows are other sessions than this browser's.
    others: int = 0
    #: The row being ended (-1: none), and whether "everywhere else" is running.
    ending: int = -1
    ending_others: bool = False
    #: What the last action did, for the page's status line.
    status: str = ""

    #: The store references of the listed sessions, row by row: backend only.
    _handles: list[str] = []  # noqa: RUF012

    async def _caller(self) -> str:
        """The session this connection acts for ('' when none)."""
        auth = await self.get_state(AuthState)
        return auth._connection_session_hash() if auth.signed_in else ""

    async def _list(self, caller: str) -> None:
        found = await sessions_of_owner(context().vault, caller) if caller else []
        rows, handles = [], []
        for session_hash, session in found:
            agent = describe_agent(session.user_agent)
            signed_in_iso, signed_in = when(session.created_at)
            used_iso, used = when(max(session.last_used, session.created_at))
            rows.append(
                {
                    "browser": agent.browser,
                    "system": agent.system,
                    "address": session.address or "unknown network",
                    "signed_in": signed_in,
                    "signed_in_iso": signed_in_iso,
                    "last_used": used,
                    "last_used_iso": used_iso,
                    "current": "1" if session_hash == caller else "",
                }
            )
            handles.append(session_hash)
        self.rows, self._handles = rows, handles
        self.others = sum(1 for h in handles if h != caller)

    @rx.event
    async def load_sessions(self):
        """List the user's sessions (the list's `on_mount`)."""
        self.ending, self.ending_others = -1, False
        try:
            await self._list(await self._caller())
        except (RedisError, OSError):
            logger.warning("the sessions list could not be read", exc_info=True)
            self.status = "Your sessions cannot be listed right now. Reload in a moment."

    @rx.event
    async def end_session(self, index: int):
        """Sign out the session of row `index` (this browser's row: Log Out)."""
        if self.ending >= 0 or self.ending_others:
            return
        if type(index) is not int or not 0 <= index < len(self._handles):
            return  # not a row of this tab's list: nothing to end
        caller = await self._caller()
        if not caller:
            return
        target = self._handles[index]
        if target == caller:
            yield AuthState.logout
            return
        self.ending, self.status = index, ""
        yield
        ctx = context()
        described = f"{self.rows[index]['browser']} on {self.rows[index]['system']}"
        try:
            ended = await end_owned_session(
                ctx.vault, caller, target, revoke=ctx.oidc.revoke, notify=ctx.sign_out_tabs
            )
            await self._list(caller)
        except (RedisError, OSError):
            logger.warning("a session could not be ended", exc_info=True)
            ended = False
        self.ending = -1
        self.status = f"Signed out: {described}." if ended else "That session was not signed out."

    @rx.event
    async def end_other_sessions(self):
        """Sign out every listed session but this browser's."""
        if self.ending >= 0 or self.ending_others:
            return
        caller = await self._caller()
        if not caller:
            return
        self.ending_others, self.status = True, ""
        yield
        ctx = context()
        count = 0
        try:
            for target in [h for h in self._handles if h != caller]:
                count += await end_owned_session(
                    ctx.vault, caller, target, revoke=ctx.oidc.revoke, notify=ctx.sign_out_tabs
                )
            await self._list(caller)
        except (RedisError, OSError):
            logger.warning("other sessions could not be ended", exc_info=True)
        self.ending_others = False
        self.status = f"Signed out {count} other session{'s' if count != 1 else ''}."
