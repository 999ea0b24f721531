"""A clock the test moves: expiry and TTL checks without waiting."""

from __future__ import annotations

import time


class FakeClock:
    """Wall clock and monotonic clock the test can move forward."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds
