"""At most one outbound fetch at a time per key, with a remembered failure.

A request that triggers an outbound call (discovery, a key set) must not let a
flood of requests become a flood of calls: `SingleFlight` makes concurrent
callers share one fetch, and for a while after a failure gives callers that
failure again without calling out (docs/security.md item 39).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

#: After a failed fetch, how long callers get that failure again without a new
#: outbound call, unless told otherwise: the default of AUTH_FAILURE_COOLDOWN, and of
#: the discovery's and the key stores' own cooldowns (docs/security.md item 39).
FAILURE_COOLDOWN = 5.0


class SingleFlight(Generic[T]):
    """Fetch at most once at a time per key, and remember a failure for a while.

    `await flight.run(key, fetch)`:

    - while a fetch for `key` runs, every caller waits for that one fetch and
      gets its result or its exception (no second outbound call);
    - for `failure_cooldown` seconds after a fetch for `key` failed, callers get
      that exception again at once, without a fetch;
    - otherwise `fetch()` is started.

    Results are not kept: keeping a good result is the caller's business. A
    caller that is cancelled (a client that went away) does not cancel the
    shared fetch. `fetches` counts the fetches started (tests and metrics).
    docs/security.md item 39: an unauthenticated flood costs one outbound call per
    cooldown, however many requests it sends.
    """

    def __init__(
        self, *, failure_cooldown: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_cooldown < 0:
            msg = "failure_cooldown must not be negative"
            raise ValueError(msg)
        self.failure_cooldown = failure_cooldown
        self._monotonic = monotonic
        self._running: dict[Hashable, asyncio.Future[T]] = {}
        self._failures: dict[Hashable, tuple[float, Exception]] = {}
        self.fetches = 0

    async def run(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            failure = self._failures.get(key)
            if failure is not None:
                until, error = failure
                if self._monotonic() < until:
                    raise error.with_traceback(None)
                del self._failures[key]
            task = self._running[key] = asyncio.ensure_future(self._fetch(key, fetch))
            # Read the outcome even if every caller was cancelled (no "never retrieved").
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(task)

    async def _fetch(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        self.fetches += 1
        try:
            return await fetch()
        except Exception as error:
            self._failures[key] = (self._monotonic() + self.failure_cooldown, error)
            raise
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]

    def forget(self) -> None:
        """Forget remembered failures (a running fetch finishes as it is)."""
        self._failures.clear()
