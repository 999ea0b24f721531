"""redis-server (Debian's) on a free port, its files in a folder of the test's."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.net import free_port, wait_until
from tests.support.processes import Server

REDIS = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


class Redis(Server):
    """redis-server on 127.0.0.1; with `append_only` its data (in `tmp`/redis-data)
    survives a stop and start on the same port."""

    def __init__(self, tmp: Path, *, append_only: bool = False) -> None:
        self.port = free_port()
        self.data = tmp / "redis-data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        super().__init__(
            "redis",
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + (persistence if append_only else ["--appendonly", "no"])
            + ["--dir", str(self.data)],
            {},
            tmp / "redis.log",
        )

    def start(self) -> Redis:
        """Start, and return once this start's "Ready to accept connections" is logged."""
        ready = self.log.read_text().count("Ready to accept") if self.log.exists() else 0
        super().start()
        wait_until(
            lambda: self.log.read_text().count("Ready to accept") > ready,
            what="redis-server",
            timeout=20,
            interval=0.05,
            alive=self.running,
            log=self.log,
        )
        return self


def start_redis(tmp: Path) -> Redis:
    return Redis(tmp).start()
