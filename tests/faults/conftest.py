"""Fault tests: real processes (the app by `make run`, the provider under granian,
redis-server), each fault made for real: a server stopped, a server that answers
too late, a server restarted. Everything on 127.0.0.1.

Run on their own: `pytest tests/faults` (browser tests, like tests/e2e).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import (
    ROOT,
    RunningApp,
    browser,
    context,
    free_port,
    page,
    wait_until_up,
)

__all__ = ["browser", "context", "page"]

HERE = Path(__file__).resolve().parent
#: HTTP_TIMEOUT for every app these tests start: a fault must show within it.
HTTP_TIMEOUT = 2.0
#: What a fault may add on top of HTTP_TIMEOUT before the user sees the answer
#: (the event round trip, React's render, Playwright's polling).
SLACK = 2.5
#: The delay of a "slow" server: well past HTTP_TIMEOUT.
SLOW = 8.0
#: Each fault test starts from a fresh attempt: no failure remembered from the last one.
APP_ENV = {"HTTP_TIMEOUT": str(HTTP_TIMEOUT), "AUTH_FAILURE_COOLDOWN": "0"}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect these tests only when asked for by path (`pytest tests/faults`):
    a browser run of their own, as tests/deploy does."""
    asked = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    if any(path == HERE or HERE in path.parents for path in asked):
        return None
    return True


def restart_app(app: RunningApp, env: dict[str, str]) -> float:
    """Stop `make run` and start it again on the same ports (the page's address
    and its backend's stay the same); the seconds the app was away."""
    app.stop()
    stopped = time.perf_counter()
    frontend = app.url.rsplit(":", 1)[1]
    backend = app.backend.rsplit(":", 1)[1]
    app.process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env={**os.environ, "FRONTEND_PORT": frontend, "BACKEND_PORT": backend, **env},
        stdout=app.log.open("a"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_until_up(app)
    return time.perf_counter() - stopped


class Provider:
    """The embedded provider alone (tests/faults/provider.py) on a fixed port, so
    it can be stopped (down) and started again at the same issuer."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/idp"
        self.tmp = tmp
        self.app_urls: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        granian = Path(sys.executable).with_name("granian")
        log = (self.tmp / "provider.log").open("a")
        self.process = subprocess.Popen(
            [
                str(granian),
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "error",
                "--factory",
                "tests.faults.provider:build",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "FAULTS_IDP_BASE": self.base,
                "FAULTS_APP_URLS": ",".join(self.app_urls),
                "FAULTS_IDP_KEY_DIR": str(self.tmp / "keys"),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, (self.tmp / "provider.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.issuer + "/.well-known/jwks.json", timeout=2).is_success:
                    return
            assert time.monotonic() < deadline, "the provider did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        """Down at once, as a crash: SIGKILL to the whole process group. (A SIGTERM
        lets granian's worker drain, and keep serving the connections a browser
        keeps alive, for a while after the main process has gone.)"""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                return  # refused: nothing listens any more
            assert time.monotonic() < deadline, "the provider still accepts connections"
            time.sleep(0.05)

    def slow(self, path: str, delay: float = SLOW) -> None:
        """Requests to paths under `path` wait `delay` s (0: no more)."""
        httpx.get(f"{self.base}/_fault", params={"path": path, "delay": delay}).raise_for_status()


class Gate:
    """A TCP server in a thread in front of `target` (host, port): in "pass" mode
    it relays bytes both ways; in "hang" mode it accepts and never answers."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "pass"
        self.target: tuple[str, int] | None = None
        self.open: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self.ready.set()
        self.loop.run_forever()
        server.close()

    def set_mode(self, mode: str) -> None:
        """ "pass" or "hang"; connections already open (kept alive) are closed."""
        self.mode = mode

        def close_all() -> None:
            for writer in list(self.open):
                writer.close()
            self.open.clear()

        self.loop.call_soon_threadsafe(close_all)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        try:
            if self.mode == "hang" or self.target is None:
                while await reader.read(65536):
                    pass  # read what comes, answer nothing, until the caller gives up
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self.open.add(up_writer)

            async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
                with contextlib.suppress(ConnectionError):
                    while data := await source.read(65536):
                        sink.write(data)
                        await sink.drain()
                with contextlib.suppress(Exception):
                    sink.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except ConnectionError:
            pass
        finally:
            self.open.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    running = Gate()
    yield running
    running.close()
