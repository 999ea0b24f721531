"""Where the provider keeps codes, sessions, consents and refresh tokens.

Two implementations of one small interface: in memory (one process) and Redis
(every backend worker and instance sees the same records). `take` is an atomic
read-and-delete, which is what makes a code or a refresh token single-use even
when two requests race.
"""

from __future__ import annotations

import json
import threading
import time
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


class MemoryStore:
    """A dict with expiry and a lock. Enough for one backend process."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._writes = 0

    def put(self, key: str, value: Record, ttl: int) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, json.dumps(value))
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

    def _live(self, key: str, *, remove: bool) -> Record | None:
        item = self._items.pop(key, None) if remove else self._items.get(key)
        if item is None:
            return None
        expires, text = item
        if expires <= time.monotonic():
            self._items.pop(key, None)
            return None
        return json.loads(text)

    def _purge(self) -> None:
        now = time.monotonic()
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

    @staticmethod
    def _load(text: object) -> Record | None:
        return json.loads(text) if isinstance(text, str) else None


def store_for(redis_url: str | None) -> Store:
    return RedisStore(redis_url) if redis_url else MemoryStore()
