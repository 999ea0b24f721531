"""Reflex's disk state manager, with its folder scan for expired states rate-limited.

Reflex's `StateManagerDisk` writes page states to `.states/` a moment after they
change (REFLEX_STATE_MANAGER_DISK_DEBOUNCE), and after every batch of writes it
scans the whole folder, one `stat` per file, for states older than their
expiry. Under steady traffic a batch is due every few milliseconds, so the scan
runs back to back: with 1,000 signed-in tabs (some 3,000 files) it took more CPU
than the events themselves (bench/results.md, "Where the CPU goes"). Expired
states lose nothing by being removed a minute late, so this manager scans at
most once per `PURGE_INTERVAL`; everything else is Reflex's own.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

from reflex.istate.manager.disk import StateManagerDisk

#: Seconds between two scans of the states folder for expired states.
PURGE_INTERVAL = 60.0


@dataclasses.dataclass
class PacedStateManagerDisk(StateManagerDisk):
    """`StateManagerDisk` that scans for expired states at most once per `purge_interval`."""

    purge_interval: float = PURGE_INTERVAL
    #: Seconds, for pacing only (tests pass their own).
    clock: Callable[[], float] = time.monotonic
    _last_purge: float = dataclasses.field(default=-math.inf, init=False)

    def _purge_expired_states(self) -> None:
        now = self.clock()
        if now - self._last_purge < self.purge_interval:
            return
        self._last_purge = now
        super()._purge_expired_states()
