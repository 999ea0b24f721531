"""Free ports and readiness polls on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx2

T = TypeVar("T")


class NotUp(AssertionError):
    """A server that exited, or did not get ready in time (a test failure)."""


def free_port() -> int:
    """A TCP port nothing listens on at the moment (the kernel's choice)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str, text: str = "", *, status: int | None = 200, timeout: float = 2) -> bool:
    """Whether GET `url` answers (with `status`, None: any) with `text` in its body."""
    response = httpx2.get(url, timeout=timeout)
    return (status is None or response.status_code == status) and text in response.text


def wait_until(
    ready: Callable[[], T],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] | None = None,
    log: Path | None = None,
) -> T:
    """Poll `ready` until it gives something true, and return that: a readiness wait,
    bounded by `timeout` seconds.

    A connection error while polling counts as "not yet". Raises NotUp once `alive`
    says the server has exited, or at the deadline, with the tail of `log`.
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise NotUp(f"{what}: the server exited{_tail(log)}")
        try:
            if result := ready():
                return result
        except (httpx2.TransportError, OSError):
            pass
        if time.monotonic() >= deadline:
            raise NotUp(f"{what}: not ready within {timeout:.0f} s{_tail(log)}")
        time.sleep(interval)


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-4000:]
