"""pingapp.reflex_internals: what pingapp relies on inside Reflex, checked against the
installed Reflex (each test below fails if an upgrade changes the name or the
behaviour it names), and the paced disk state manager."""

from __future__ import annotations

import inspect
import os
import re
import time
from importlib.metadata import version
from pathlib import Path

import pytest
import reflex as rx
from reflex.config import get_config
from reflex.istate.manager.disk import StateManagerDisk

from pingapp import reflex_internals
from pingapp.reflex_internals import CHECKED_AGAINST, PacedStateManagerDisk, PacedStatesApp


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def expired_state(folder: Path, name: str) -> Path:
    """A state file last written two days ago (far beyond any token expiry)."""
    path = folder / f"{name}.pkl"
    path.write_bytes(b"")
    old = time.time() - 2 * 86_400
    os.utime(path, (old, old))
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REFLEX_STATES_WORKDIR", str(tmp_path))
    return tmp_path


def test_expired_states_are_removed_at_start_then_at_most_once_per_interval(
    folder: Path,
) -> None:
    at_start = expired_state(folder, "a")
    clock = Clock()
    manager = PacedStateManagerDisk(clock=clock, purge_interval=60, token_expiration=3600)
    assert manager.states_directory == folder.absolute()
    assert not at_start.exists()  # Reflex's own scan at start

    later = expired_state(folder, "b")
    clock.now += 59
    manager._purge_expired_states()  # after every write batch: too soon to scan again
    assert later.exists()
    clock.now += 1
    manager._purge_expired_states()
    assert not later.exists()


def test_live_states_stay(folder: Path) -> None:
    live = folder / "live.pkl"
    live.write_bytes(b"")
    clock = Clock()
    manager = PacedStateManagerDisk(clock=clock, token_expiration=3600)
    clock.now += 3600
    manager._purge_expired_states()
    assert live.exists()


def test_the_app_keeps_its_page_states_with_the_paced_manager(folder: Path) -> None:
    from pingapp.pingapp import app

    app._setup_state()  # as Reflex does when the backend starts
    assert type(app._state_manager) is PacedStateManagerDisk


# --- the assumptions, against the installed Reflex -------------------------------------


def test_the_installed_reflex_is_the_one_these_were_checked_against() -> None:
    """A new Reflex: re-check every name in the module's docstring, then move the pin."""
    assert version("reflex") == CHECKED_AGAINST


def test_reflex_still_purges_expired_states_after_its_writes() -> None:
    source = inspect.getsource(StateManagerDisk)
    assert "def _purge_expired_states" in source
    assert source.count("_purge_expired_states()") >= 1  # called, not only defined


def test_the_app_still_builds_its_state_manager_in_setup_state() -> None:
    assert "_state_manager" in inspect.getsource(rx.App._setup_state)
    assert PacedStatesApp._setup_state is not rx.App._setup_state


def test_the_event_path_follows_backend_path() -> None:
    config = get_config()
    assert config.backend_path == "/_reflex"  # rxconfig.py
    assert reflex_internals.event_path() == "/_reflex/_event"
    assert reflex_internals.reflex_paths() == ("/_reflex",)
    # Reflex's own socket path is built the same way (reflex/app.py).
    assert "prepend_backend_path(str(constants.Endpoint.EVENT))" in inspect.getsource(rx.App)


def test_without_a_backend_path_every_reflex_route_is_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(get_config(), "backend_path", "")
    assert reflex_internals.event_path() == "/_event"
    assert "/_event" in reflex_internals.reflex_paths()
    assert "/_upload" in reflex_internals.reflex_paths()


def test_the_handshake_still_names_the_tab_in_its_token_parameter() -> None:
    """Reflex's client puts the client token in the websocket URL's `token` query."""
    import reflex_base

    script = Path(reflex_base.__file__).parent / ".templates" / "web" / "utils" / "state.js"
    param = reflex_internals.TAB_PARAM
    assert re.search(rf"query:\s*\{{\s*{param}\b", script.read_text())
