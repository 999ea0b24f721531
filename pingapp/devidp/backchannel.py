"""OpenID Connect Back-Channel Logout 1.0, the provider's side: Logout Tokens and
their delivery.

When a provider session ends (`/logout`) or a grant is revoked, every client that
got tokens in that session and registered a `backchannel_logout_uri` is sent a
signed Logout Token (section 2.4) in a form POST (section 2.5). Delivery runs as
tasks on the event loop, never in the request that ended the session: bounded
retries (count and total time, exponential backoff), a short timeout per attempt,
no redirects followed, and failures logged without the token.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio.from_thread
import httpx2
from joserfc import jwt

from pingapp.devidp.keys import ALGORITHM, SigningKeys
from pingapp.oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT, LOGOUT_JWT_TYPE

log = logging.getLogger("pingapp.devidp")

#: A Logout Token is used at once; two minutes cover clock skew and retries.
LOGOUT_TOKEN_TTL = 120


@dataclass(frozen=True)
class LogoutNotice:
    """One Logout Token to deliver: to whom (the client's URI) and the token itself."""

    client_id: str
    uri: str
    token: str


def logout_token(
    keys: SigningKeys, issuer: str, client_id: str, *, sub: str, sid: str, now: float
) -> str:
    """A Logout Token for one client (section 2.4): signed with the current key,
    `typ: logout+jwt`, `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub`, `sid`;
    never a `nonce` (section 2.4 forbids it, so it cannot pass as an ID token)."""
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_id,
        "iat": issued,
        "exp": issued + LOGOUT_TOKEN_TTL,
        "jti": secrets.token_urlsafe(24),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        "sub": sub,
        "sid": sid,
    }
    header = {"alg": ALGORITHM, "typ": LOGOUT_JWT_TYPE, "kid": keys.kid}
    return jwt.encode(header, claims, keys.current, algorithms=[ALGORITHM])


class LogoutDelivery:
    """POSTs Logout Tokens in the background, with bounded retries.

    `http` is the client to send with (one is made, and kept, when not given);
    `sleep` waits between attempts and `clock` measures the total time (tests pass
    fakes, or a fast `backoff`). Attempt `n` waits `backoff * 2**(n-1)` before the
    next; no attempt starts after `total_timeout`, and none lasts past it.
    An attempt succeeds on 200 or 204. Only transport errors (timeouts included),
    429 and 5xx are retried: a 400 is the client refusing the token (section 2.8)
    and a redirect is not followed, so sending the same token again cannot help.
    """

    def __init__(
        self,
        *,
        http: httpx2.AsyncClient | None = None,
        attempts: int = 3,
        attempt_timeout: float = 3.0,
        total_timeout: float = 10.0,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._http = http
        self._owns_http = http is None
        self.attempts = attempts
        self.attempt_timeout = attempt_timeout
        self.total_timeout = total_timeout
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def http(self) -> httpx2.AsyncClient:
        if self._http is None:
            # Not the app's shared client: the provider must not depend on the app.
            self._http = httpx2.AsyncClient(follow_redirects=False)
        return self._http

    def send(self, notices: list[LogoutNotice]) -> None:
        """Start delivering; returns at once. Callable on the event loop or from a
        worker thread that anyio started (Starlette's `run_in_threadpool`)."""
        if not notices:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            try:
                anyio.from_thread.run_sync(self._spawn, notices)
            except RuntimeError:  # a thread anyio did not start: no loop to run on
                clients = ", ".join(notice.client_id for notice in notices)
                log.warning("back-channel logout not sent (no event loop): %s", clients)
        else:
            self._spawn(notices)

    def _spawn(self, notices: list[LogoutNotice]) -> None:
        for notice in notices:
            task = asyncio.get_running_loop().create_task(self.deliver(notice))
            self._tasks.add(task)  # a reference, so the task is not collected mid-way
            task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Finish the deliveries under way, then close the client if it is ours."""
        await self.wait()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def wait(self) -> None:
        """Until every delivery started so far has finished (for tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def deliver(self, notice: LogoutNotice) -> bool:
        """Try up to `attempts` times within `total_timeout` seconds; True once delivered."""
        deadline = self._clock() + self.total_timeout
        reason = "no attempt made"
        tried = 0
        for attempt in range(1, self.attempts + 1):
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            tried = attempt
            try:
                response = await self.http.post(
                    notice.uri,
                    data={"logout_token": notice.token},
                    timeout=min(self.attempt_timeout, remaining),
                    follow_redirects=False,  # even on a client given that follows them
                )
            except (httpx2.HTTPError, httpx2.InvalidURL) as error:
                reason = type(error).__name__
            else:
                if response.status_code in (200, 204):
                    return True
                reason = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    break
            if attempt < self.attempts:
                pause = self.backoff * 2 ** (attempt - 1)
                if self._clock() + pause >= deadline:
                    break
                await self._sleep(pause)
        # The client's registered URI and the reason only: never the token.
        log.warning(
            "back-channel logout to client %s at %s failed after %d attempt(s): %s",
            notice.client_id,
            notice.uri,
            tried,
            reason,
        )
        return False
