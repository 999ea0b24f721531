"""Replay caches for DPoP proofs: "has this `jti` been seen while its proof is valid?"

`first_use(key, expires_at)` records `key` until `expires_at` (a time on the caller's
clock) and tells whether it was new. Two implementations:

- `MemoryReplayCache`: one process, memory bounded by `max_entries`. When it is full of
  live entries it forgets the one that expires first and from then on refuses every
  proof that would expire no later than that one: a replay is never let through, at
  worst an old (but still valid) proof is refused while a flood lasts.
- `StoreReplayCache`: any store with an atomic set-if-absent with a time to live
  (`put_new`, as `pingapp.auth.store.RedisStore` and `DiskStore` have), so several
  backends on one Redis share what they have seen.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol


class ReplayCache(Protocol):
    async def first_use(self, key: str, expires_at: float) -> bool:
        """Record `key` until `expires_at`; whether it was not recorded already."""
        ...


class SetIfAbsent(Protocol):
    """The one operation `StoreReplayCache` needs from a store."""

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool: ...


class MemoryReplayCache:
    """Keys with an expiry in one process, at most `max_entries` of them; safe to share
    between threads."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.time):
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # (expiry, key), soonest first
        self._horizon = float("-inf")  # expiries up to here may have been forgotten
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def remember(self, key: str, expires: float) -> bool:
        """`first_use` for callers without an event loop."""
        with self._lock:
            return self._remember(key, expires)

    def _remember(self, key: str, expires: float) -> bool:
        self._purge(self._clock())
        if key in self._expiry or expires <= self._horizon:
            return False
        while len(self._expiry) >= self._max:
            forgotten, old = heapq.heappop(self._queue)
            if self._expiry.get(old) == forgotten:
                del self._expiry[old]
                self._horizon = max(self._horizon, forgotten)
        if expires <= self._horizon:
            return False
        self._expiry[key] = expires
        heapq.heappush(self._queue, (expires, key))
        return True

    async def first_use(self, key: str, expires_at: float) -> bool:
        return self.remember(key, expires_at)

    def _purge(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            expires, key = heapq.heappop(self._queue)
            if self._expiry.get(key) == expires:
                del self._expiry[key]


class StoreReplayCache:
    """Seen keys in a shared store, under `prefix`, removed by the store's own expiry."""

    def __init__(
        self,
        store: SetIfAbsent,
        prefix: str = "dpop:jti:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._clock = clock

    async def first_use(self, key: str, expires_at: float) -> bool:
        ttl = max(expires_at - self._clock(), 1.0)
        return await self._store.put_new(self._prefix + key, b"1", ttl)
