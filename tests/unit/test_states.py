"""pingapp.states: Reflex's disk state manager, scanning for expired states at a pace."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pingapp.states import PacedStateManagerDisk


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
