"""Faults made for real: the embedded provider alone (tests/faults/provider.py),
which can be stopped as in a crash and slowed down per path, and a TCP gate that
relays or hangs. Everything on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx2

from tests.support.net import answers, free_port, wait_until
from tests.support.processes import ROOT, granian_command, stop_process_group

#: HTTP_TIMEOUT for every app these tests start: a fault must show within it.
HTTP_TIMEOUT = 2.0
#: What a fault may add on top of HTTP_TIMEOUT before the user sees the answer
#: (the event round trip, React's render, Playwright's polling).
SLACK = 2.5
#: The delay of a "slow" server: well past HTTP_TIMEOUT.
SLOW = 8.0
#: Each fault test starts from a fresh attempt: no failure remembered from the last one.
APP_ENV = {"HTTP_TIMEOUT": str(HTTP_TIMEOUT), "AUTH_FAILURE_COOLDOWN": "0"}


class Provider:
    """The embedded provider alone on a fixed port, so it can be stopped (down) and
    started again at the same issuer."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/idp"
        self.tmp = tmp
        self.app_urls: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.tmp / "provider.log"
        process = self.process = subprocess.Popen(
            granian_command("tests.faults.provider:build", self.port),
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "FAULTS_IDP_BASE": self.base,
                "FAULTS_APP_URLS": ",".join(self.app_urls),
                "FAULTS_IDP_KEY_DIR": str(self.tmp / "keys"),
            },
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(
            lambda: answers(self.issuer + "/.well-known/jwks.json"),
            what="the provider",
            timeout=30,
            alive=lambda: process.poll() is None,
            log=log,
        )

    def stop(self) -> None:
        """Down at once, as a crash: SIGKILL to the whole process group. (A SIGTERM
        lets granian's worker drain, and keep serving the connections a browser
        keeps alive, for a while after the main process has gone.)"""
        if self.process is None:
            return
        stop_process_group(self.process, timeout=10, signum=signal.SIGKILL)
        wait_until(self.refused, what="the provider's port closing", timeout=10, interval=0.05)

    def refused(self) -> bool:
        """Whether nothing listens on the provider's port any more."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return False
        except OSError:
            return True

    def token_lifetime(self, expires_in: int | None) -> None:
        """Token answers say `expires_in` (negative: already expired; None: the
        provider's own), so the app holds its tokens as expired without waiting."""
        value = "" if expires_in is None else str(expires_in)
        httpx2.get(f"{self.base}/_fault", params={"expires_in": value}).raise_for_status()

    def slow(self, path: str, delay: float = SLOW) -> None:
        """Requests to paths under `path` wait `delay` s (0: no more)."""
        httpx2.get(f"{self.base}/_fault", params={"path": path, "delay": delay}).raise_for_status()


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
