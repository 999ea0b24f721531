"""Processes started by tests, each in a process group of its own, stopped as a group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import NotUp, answers, wait_until

ROOT = Path(__file__).resolve().parents[2]


def stop_process_group(
    process: subprocess.Popen, timeout: float = 20, *, signum: int = signal.SIGTERM
) -> None:
    """`signum` to a process started with start_new_session=True and its children;
    SIGKILL if they are still there after `timeout` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, whatever session it started for itself (bun may
    start one of its own, out of the process group's reach)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ...: comm may hold spaces, so split after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop_tree(
    process: subprocess.Popen,
    tree: list[int],
    *,
    signum: int = signal.SIGTERM,
    timeout: float = 20,
) -> None:
    """`signum` to `process`'s group (`stop_process_group`), then SIGTERM and SIGKILL
    to whatever of `tree` (its `descendants`, taken while it ran) outlived it."""
    stop_process_group(process, timeout=timeout, signum=signum)
    for kill in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, kill)
        deadline = time.monotonic() + 10
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [pid for pid in alive if Path(f"/proc/{pid}").exists()]


def granian_command(factory: str, port: int, *, workers: int = 1) -> list[str]:
    """granian serving the ASGI app `factory` ("module:function") on 127.0.0.1:`port`."""
    return [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "error",
        "--factory",
        factory,
    ]


@dataclass
class Server:
    """A process started from the repository's root, its output appended to `log`."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    # False: `env` is the whole environment, not additions to the tests' own.
    inherit_env: bool = True

    def start(self) -> Server:
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env={**os.environ, **self.env} if self.inherit_env else dict(self.env),
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)

    def wait_until(
        self, url: str, answer: str, timeout: float = 60, *, status: int | None = None
    ) -> None:
        """Until GET `url` answers (with `status`, None: any) with `answer` in its body;
        stopped if it never does."""
        try:
            wait_until(
                lambda: answers(url, answer, status=status, timeout=5),
                what=f"{self.name} at {url}",
                timeout=timeout,
                interval=0.3,
                alive=self.running,
                log=self.log,
            )
        except NotUp:
            self.stop()
            raise
