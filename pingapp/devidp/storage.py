"""Where the provider keeps codes, sessions, consents and refresh tokens.

Two implementations of one small interface: in memory (one process) and Redis
(every backend worker and instance sees the same records). `take` is an atomic
read-and-delete, which is what makes a code or a refresh token single-use even
when two requests race; `add` is an atomic counter (failed sign-ins).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

Record = dict[str, Any]


class Store(Protocol):
    def put(self, key: str, value: Record, ttl: int) -> None:
        """Store `value` under `key` for `ttl` seconds, replacing what was there."""
        ...

    def get(self, key: str) -> Record | None: ...

    def take(self, key: str) -> Record | None:
        """Read and delete in one step: of two concurrent callers one gets None."""
        ...

    def delete(self, key: str) -> None: ...

    def add(self, key: str, ttl: int) -> int:
        """Add one to the counter under `key` and return it, atomically; a new counter
        starts at 0 and lives `ttl` seconds (adding does not extend it)."""
        ...

    def count(self, key: str) -> int:
        """The counter under `key`; 0 when there is none (and none is created)."""
        ...


class MemoryStore:
    """A dict with expiry and a lock. Enough for one backend process.

    `clock` (monotonic seconds) decides expiry; tests pass one they move.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def put(self, key: str, value: Record, ttl: int) -> None:
        with self._lock:
            self._items[key] = (self._clock() + ttl, json.dumps(value))
            self._writes += 1
            if self._writes % 256 == 0:
                self._purge()

    def get(self, key: str) -> Record | None:
        with self._lock:
            return self._live(key, remove=False)

    def take(self, key: str) -> Record | None:
        with self._lock:
            return self._live(key, remove=True)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def add(self, key: str, ttl: int) -> int:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] <= self._clock():
                item = (self._clock() + ttl, "0")
            value = int(item[1]) + 1
            self._items[key] = (item[0], str(value))
            self._writes += 1
            if self._writes % 256 == 0:
                self._purge()
            return value

    def count(self, key: str) -> int:
        with self._lock:
            item = self._items.get(key)
            return int(item[1]) if item and item[0] > self._clock() else 0

    def __len__(self) -> int:
        """Records held, expired ones not yet purged included."""
        with self._lock:
            return len(self._items)

    def _live(self, key: str, *, remove: bool) -> Record | None:
        item = self._items.pop(key, None) if remove else self._items.get(key)
        if item is None:
            return None
        expires, text = item
        if expires <= self._clock():
            self._items.pop(key, None)
            return None
        return json.loads(text)

    def _purge(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._items.items() if expires <= now]:
            del self._items[key]


class RedisStore:
    """Records in Redis (REFLEX_REDIS_URL or IDP_REDIS_URL), shared by every worker."""

    PREFIX = "pingapp:idp:"

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, decode_responses=True)

    def put(self, key: str, value: Record, ttl: int) -> None:
        self._redis.set(self.PREFIX + key, json.dumps(value), ex=max(1, ttl))

    def get(self, key: str) -> Record | None:
        return self._load(self._redis.get(self.PREFIX + key))

    def take(self, key: str) -> Record | None:
        # GETDEL (Redis >= 6.2) is atomic on the server.
        return self._load(self._redis.getdel(self.PREFIX + key))

    def delete(self, key: str) -> None:
        self._redis.delete(self.PREFIX + key)

    def add(self, key: str, ttl: int) -> int:
        # One transaction: create at 0 with its TTL if missing, then INCR (keeps the TTL).
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self.PREFIX + key, 0, ex=max(1, ttl), nx=True)
        pipe.incr(self.PREFIX + key)
        return int(pipe.execute()[1])

    def count(self, key: str) -> int:
        value = self._redis.get(self.PREFIX + key)
        return int(value) if isinstance(value, str) and value.isdigit() else 0

    @staticmethod
    def _load(text: object) -> Record | None:
        return json.loads(text) if isinstance(text, str) else None


def store_for(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
