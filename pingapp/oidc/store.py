"""Where the server keeps sign-in records: sessions, pending logins, one-time tickets.

Two stores with one interface:

- `DiskStore` (the default): one owner-only file per record in `.sessions/`
  (mode 0700), so a restart of `reflex run` keeps users signed in. One process.
- `RedisStore` (when `REFLEX_REDIS_URL` is set): shared by every backend worker,
  with a Redis lock for "one writer per record" and Redis' own expiry.

Rules every caller can rely on (docs/security.md 34, 38):

- A look-up never creates a record: a flood of random ids leaves the store as it was.
- Every record has a time to live and disappears with it: Redis expires it; the
  disk store also sweeps its folder by itself (at most once per `PURGE_INTERVAL`)
  and holds at most `MAX_RECORDS` records (docs/security.md 47).
- Values are opaque bytes: `pingapp.oidc.session` encrypts them before they get here,
  so neither a Redis dump nor a file holds a usable token.
- Keys are hashes of the secrets they stand for; a file name reveals nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

#: Seconds a record lock may be held before Redis frees it (a crashed worker).
LOCK_TIMEOUT = 30.0
#: Seconds between two sweeps of the disk store's folder for expired records.
PURGE_INTERVAL = 60.0
#: The most records the disk store holds; a new one beyond that is refused.
MAX_RECORDS = 100_000


class StoreFull(OSError):
    """The disk store holds `MAX_RECORDS` live records (callers answer 503)."""


class Store(Protocol):
    """Records with a time to live; see the module docstring for the rules."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...

    async def take(self, key: str) -> bytes | None:
        """The value, removed in the same step: a second `take` gets None."""
        ...

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        """Store only if no live record has `key`; whether it was stored."""
        ...

    async def delete(self, key: str) -> None: ...

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Held by one writer at a time (per process on disk, across workers on Redis)."""
        ...

    async def count(self) -> int:
        """How many live records there are (for tests and monitoring)."""
        ...


class _SharedLock:
    """An asyncio lock and how many tasks hold or await it."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class DiskStore:
    """Owner-only files, one per record: `<expiry as text>\\n<value>`.

    Expired records go when they are read, and in a sweep of the whole folder at
    most once per `purge_interval` (on a write), so records nobody reads again do
    not pile up. At most `max_records` live records: beyond that a new record is
    refused with `StoreFull` (an `OSError`, which the routes answer with 503)."""

    def __init__(
        self,
        folder: Path,
        clock: Callable[[], float] = time.time,
        *,
        max_records: int = MAX_RECORDS,
        purge_interval: float = PURGE_INTERVAL,
    ) -> None:
        self._folder = folder
        self._clock = clock
        self._locks: dict[str, _SharedLock] = {}
        self._max_records = max_records
        self._purge_interval = purge_interval
        self._last_purge = -math.inf
        self._records = 0  # live records as of the last sweep, plus writes since
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)  # also when it was made earlier with looser rights

    def _path(self, key: str) -> Path:
        return self._folder / _file_name(key)

    def _remove(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        self._records = max(0, self._records - 1)

    def _read(self, path: Path) -> bytes | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        expiry, _, value = raw.partition(b"\n")
        try:
            alive = float(expiry) > self._clock()
        except ValueError:
            alive = False
        if not alive:
            self._remove(path)
            return None
        return value

    def purge(self) -> int:
        """Remove every expired record now; how many live ones remain."""
        self._last_purge = self._clock()
        self._records = sum(
            1
            for path in self._folder.iterdir()
            if not path.name.startswith(".") and self._read(path) is not None
        )
        return self._records

    def _is_new(self, path: Path) -> bool:
        """Whether writing `path` adds a record; `StoreFull` when there is no room.
        A full store is swept again only when a sweep is due: refusing is cheap,
        and a flood of refused writes must not each cost a scan of the folder."""
        if self._clock() - self._last_purge >= self._purge_interval:
            self.purge()
        if path.exists():
            return False  # a rewrite
        if self._records >= self._max_records:
            raise StoreFull(f"the session store holds {self._max_records} records")
        return True

    async def get(self, key: str) -> bytes | None:
        return self._read(self._path(key))

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        path = self._path(key)
        new = self._is_new(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(f"{self._clock() + ttl!r}\n".encode() + value)
        tmp.replace(path)
        self._records += new

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        # One process owns the folder, and nothing here awaits: this is atomic.
        if self._read(self._path(key)) is not None:
            return False
        await self.put(key, value, ttl)
        return True

    async def take(self, key: str) -> bytes | None:
        # One process owns the folder, and nothing below awaits: this is atomic.
        path = self._path(key)
        value = self._read(path)
        self._remove(path)
        return value

    async def delete(self, key: str) -> None:
        self._remove(self._path(key))

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # A lock lives while anyone holds or awaits it: dropping it as soon as it is
        # free would let a newcomer take a fresh one beside a woken waiter.
        entry = self._locks.setdefault(key, _SharedLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]

    async def count(self) -> int:
        return self.purge()


class RedisStore:
    """Records in Redis, shared by every backend worker."""

    PREFIX = "pingapp:auth:"

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self._redis = redis.asyncio.Redis.from_url(url)

    async def get(self, key: str) -> bytes | None:
        return await self._redis.get(self.PREFIX + key)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        await self._redis.set(self.PREFIX + key, value, px=max(1, int(ttl * 1000)))

    async def put_new(self, key: str, value: bytes, ttl: float) -> bool:
        stored = await self._redis.set(
            self.PREFIX + key, value, px=max(1, int(ttl * 1000)), nx=True
        )
        return bool(stored)

    async def take(self, key: str) -> bytes | None:
        return await self._redis.getdel(self.PREFIX + key)  # atomic on the server

    async def delete(self, key: str) -> None:
        await self._redis.delete(self.PREFIX + key)

    @contextlib.asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        async with self._redis.lock(
            f"{self.PREFIX}lock:{key}", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_TIMEOUT
        ):
            yield

    async def count(self) -> int:
        found = 0
        async for name in self._redis.scan_iter(match=self.PREFIX + "*", count=500):
            found += b":lock:" not in name
        return found
