"""Replay caches for DPoP proofs: "has this `jti` been seen while its proof is valid?"

`first_use(key, expires_at, owner)` records `key` until `expires_at` (a time on the
caller's clock) for `owner`, the thumbprint of the proof's key, and tells whether it
was new. A cache that must forget refuses from then on whatever it may have
forgotten: a replay is never let through, at worst a valid proof is refused.

- `MemoryReplayCache`: one process, at most `max_entries`, of which one owner holds at
  most `max_per_owner` (a quarter by default). An owner over its share forgets its own
  entry that expires first and from then on is refused every proof that would expire
  no later; other owners' entries stay. When the whole cache is full, it forgets the
  entry that expires first, whoever owns it, and refuses every proof that would expire
  no later (an old but valid proof is refused while a flood by several keys lasts).
- `StoreReplayCache`: any store with an atomic set-if-absent with a time to live
  (`put_new`, as `pingapp.oidc.store.RedisStore` and `DiskStore` have), so several
  backends on one Redis share what they have seen. It cannot forget one owner's
  entries (another backend would then take their replays), so an owner over its share
  is refused instead: each process records at most `max_per_owner` keys of one owner
  a minute, counted in the process. One key thus adds at most that many records a
  minute per backend; how many keys there are is not bounded here (at the API each
  needs an access token bound to it).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from typing import Protocol


class ReplayCache(Protocol):
    async def first_use(self, key: str, expires_at: float, owner: str) -> bool:
        """Record `key` of `owner` until `expires_at`; whether it was not recorded already."""
        ...


class SetIfAbsent(Protocol):
    """The one operation `StoreReplayCache` needs from a store."""

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool: ...


class MemoryReplayCache:
    """Keys with an expiry in one process, at most `max_entries` of them and at most
    `max_per_owner` (a quarter of them by default) of one owner; safe to share between
    threads."""

    def __init__(
        self,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
        max_per_owner: int | None = None,
    ):
        per_owner = max(1, max_entries // 4) if max_per_owner is None else max_per_owner
        if max_entries < 1 or per_owner < 1:
            raise ValueError("max_entries and max_per_owner must be at least 1")
        self._max = max_entries
        self._max_per_owner = per_owner
        self._clock = clock
        self._entries: dict[str, tuple[float, str]] = {}  # key: (expiry, owner)
        # (expiry, key), soonest first: of every entry (and of keys owners forgot) ...
        self._queue: list[tuple[float, str]] = []
        # ... and of each owner's entries (only owners that have some).
        self._owned: dict[str, list[tuple[float, str]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, key: str, expires: float, owner: str) -> bool:
        """`first_use` for callers without an event loop."""
        with self._lock:
            return self._remember(key, expires, owner)

    async def first_use(self, key: str, expires_at: float, owner: str) -> bool:
        return self.remember(key, expires_at, owner)

    def _remember(self, key: str, expires: float, owner: str) -> bool:
        now = self._clock()
        while (first := self._first()) and first[0] <= now:
            self._drop(first)
        if key in self._entries:
            return False
        # Making room forgets the entry that expires first: the owner's own when it is
        # over its share, else the cache's when it is full. A key that would expire no
        # later is refused instead, so from then on the entries kept only get later and
        # a forgotten key, which expires no later than any of them, stays refused.
        mine = self._owned.get(owner, [])
        if len(mine) >= self._max_per_owner:
            if expires <= mine[0][0]:
                return False
            _, old = heapq.heappop(mine)
            del self._entries[old]  # its place in self._queue is skipped later
        elif len(self._entries) >= self._max and (first := self._first()):
            if expires <= first[0]:
                return False
            self._drop(first)
        self._entries[key] = (expires, owner)
        heapq.heappush(self._queue, (expires, key))
        heapq.heappush(self._owned.setdefault(owner, mine), (expires, key))
        if len(self._queue) > 2 * self._max:  # mostly keys owners forgot: rebuild
            self._queue = sorted((expiry, k) for k, (expiry, _) in self._entries.items())
        return True

    def _first(self) -> tuple[float, str] | None:
        """The entry that expires first; keys owners forgot go from the top of the queue."""
        while self._queue:
            expires, key = self._queue[0]
            entry = self._entries.get(key)
            if entry is not None and entry[0] == expires:
                return expires, key
            heapq.heappop(self._queue)
        return None

    def _drop(self, first: tuple[float, str]) -> None:
        """Forget the entry that expires first (its owner's first too)."""
        heapq.heappop(self._queue)
        owner = self._entries.pop(first[1])[1]
        heapq.heappop(self._owned[owner])
        if not self._owned[owner]:
            del self._owned[owner]


class StoreReplayCache:
    """Seen keys in a shared store, under `prefix`, removed by the store's own expiry;
    at most `max_per_owner` new keys of one owner a minute from this process."""

    def __init__(
        self,
        store: SetIfAbsent,
        prefix: str = "dpop:jti:",
        clock: Callable[[], float] = time.time,
        max_per_owner: int = 25_000,
    ) -> None:
        self._store = store
        self._prefix = prefix
        self._clock = clock
        self._max_per_owner = max_per_owner
        self._counts: dict[str, int] = {}  # keys recorded per owner this minute
        self._minute_ends = float("-inf")

    async def first_use(self, key: str, expires_at: float, owner: str) -> bool:
        now = self._clock()
        if now >= self._minute_ends:
            self._counts.clear()
            self._minute_ends = now + 60
        if self._counts.get(owner, 0) >= self._max_per_owner:
            return False  # this owner's flood stops here; the store never sees it
        ttl = max(expires_at - now, 1.0)
        if not await self._store.put_new(self._prefix + key, b"1", ttl):
            return False  # a replay: not counted, so replays cannot lock an owner out
        self._counts[owner] = self._counts.get(owner, 0) + 1
        return True
