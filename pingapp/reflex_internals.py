"""Everything pingapp relies on inside Reflex that is not Reflex's documented API.

Checked against Reflex 0.10.1 (`CHECKED_AGAINST`). `tests/unit/test_reflex_internals.py`
fails if an upgrade changes any of these; re-check each one before moving the pin.

- `reflex.istate.manager.disk.StateManagerDisk._purge_expired_states`, which Reflex
  calls after every batch of state writes: `PacedStateManagerDisk` paces it.
- `rx.App._setup_state` and `rx.App._state_manager`: `PacedStatesApp` puts the paced
  manager in place of Reflex's disk manager (never in place of Redis or memory).
- `reflex_base.constants.Endpoint` and `Config.prepend_backend_path`: the paths of
  Reflex's own routes and of its event websocket (`event_path`, `reflex_paths`), from
  rxconfig.py's `backend_path`; the session lookup at the handshake (`pingapp.pingapp`)
  and the header and loopback layers use them, so a changed `backend_path` moves them too.
- The event websocket's handshake carries the tab's client token in the query parameter
  `token` (`TAB_PARAM`; `pingapp.oidc.cookies.handshake_scope` rewrites it).
- `reflex.utils.prerequisites.get_states_dir()`: where the disk manager writes.
- `reflex_base.environment.environment.REFLEX_ENV_MODE`: dev or prod.
- Behaviour, not a name: Reflex's client (`state.js`) sends a page's `on_load` events
  again when its websocket reconnects, also while the page is leaving. `AuthState`
  allows for it (`_leaving_until`; `handle_callback` with a cleaned address).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path

import reflex as rx
from reflex.config import get_config
from reflex.istate.manager.disk import StateManagerDisk
from reflex.utils import prerequisites
from reflex_base import constants
from reflex_base.environment import environment

#: The Reflex version these were read from (requirements.txt pins it).
CHECKED_AGAINST = "0.10.1"
#: The handshake's query parameter that names the tab (Reflex's client token).
TAB_PARAM = "token"
#: Seconds between two scans of the states folder for expired states.
PURGE_INTERVAL = 60.0


def event_path() -> str:
    """The path of Reflex's event websocket (`/_reflex/_event` with rxconfig.py's)."""
    return get_config().prepend_backend_path(str(constants.Endpoint.EVENT))


def reflex_paths() -> tuple[str, ...]:
    """The paths of Reflex's own backend routes (the event websocket, uploads, health,
    ping, ...): under `backend_path` when it is set, each one on its own otherwise."""
    config = get_config()
    if config.backend_path.strip("/"):
        return ("/" + config.backend_path.strip("/"),)
    return tuple(str(endpoint) for endpoint in constants.Endpoint)


def states_dir() -> Path:
    """Where Reflex's disk state manager keeps the tabs' states."""
    return prerequisites.get_states_dir()


def is_prod() -> bool:
    """Whether Reflex runs in prod mode (`reflex run --env prod`, `make prod`)."""
    return environment.REFLEX_ENV_MODE.get() == constants.Env.PROD


@dataclasses.dataclass
class PacedStateManagerDisk(StateManagerDisk):
    """Reflex's disk state manager, with its folder scan for expired states rate-limited.

    Reflex's `StateManagerDisk` writes page states a moment after they change
    (REFLEX_STATE_MANAGER_DISK_DEBOUNCE), and after every batch of writes it scans
    the whole folder, one `stat` per file, for states older than their expiry. Under
    steady traffic a batch is due every few milliseconds, so the scan runs back to
    back: with 1,000 signed-in tabs (some 3,000 files) it took more CPU than the
    events themselves (bench/results.md, "Where the CPU goes"). Expired states lose
    nothing by being removed a minute late, so this manager scans at most once per
    `purge_interval`; everything else is Reflex's own.
    """

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


class PacedStatesApp(rx.App):
    """`rx.App` whose disk state manager (not Redis, not memory) is the paced one."""

    def _setup_state(self) -> None:
        super()._setup_state()
        if type(self._state_manager) is StateManagerDisk:
            self._state_manager = PacedStateManagerDisk()
