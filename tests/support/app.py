"""The app started the way a user starts it (`make run`, `make prod`) on free ports,
and the server-side sessions it keeps on disk."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
from cryptography.fernet import Fernet, InvalidToken

from pingapp.oidc.session import KEY_FILE, ServerSession
from tests.support.net import NotUp, free_port, wait_until
from tests.support.processes import ROOT, stop_process_group

START_TIMEOUT = 420  # seconds: a cold prod build on 2 cores takes a while
PUBLIC_MESSAGE = "Hello from a public endpoint!"
PRIVATE_MESSAGE = "Hello from a private endpoint!"


@dataclass
class RunningApp:
    """An app started by make; `url` is where the browser goes."""

    url: str
    backend: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process_group(self.process)

    def up(self) -> bool:
        page = httpx2.get(self.url + "/ping", timeout=5, follow_redirects=True)
        health = httpx2.get(self.backend + "/_reflex/ping", timeout=5)
        return page.status_code == 200 and "<html" in page.text and health.text == '"pong"'

    def wait_until_up(self) -> None:
        """Until the page and the backend answer; stopped if they never do."""
        try:
            wait_until(
                self.up,
                what=f"the app at {self.url}",
                timeout=START_TIMEOUT,
                interval=1,
                alive=lambda: self.process.poll() is None,
                log=self.log,
            )
        except NotUp:
            self.stop()
            raise


def make(
    target: str, frontend: str, backend: str, log: Path, env: dict[str, str], root: Path = ROOT
):
    return subprocess.Popen(
        ["make", "--no-print-directory", target],
        cwd=root,
        env={**os.environ, "FRONTEND_PORT": frontend, "BACKEND_PORT": backend, **env},
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # so the whole tree (reflex, bun, vite) can be stopped
    )


#: How many times `start_app` picks new ports when another process took the free ones
#: between `free_port` and the server's bind (other servers start in parallel).
PORT_ATTEMPTS = 3


def start_app(
    target: str, tmp_dir: Path, env: dict[str, str] | None = None, root: Path = ROOT
) -> RunningApp:
    """`make <target>` on free ports, with the app's settings from `env`, in the
    checkout at `root` (this one, or an earlier commit's for a benchmark). A port
    taken meanwhile by another process is not the app's failure: new ports, again."""
    log = tmp_dir / f"make-{target}.log"
    log.write_text("")
    attempts = 0
    while True:
        attempts += 1
        frontend = free_port()
        backend = frontend if target == "prod" else free_port()
        start = log.stat().st_size
        app = RunningApp(
            url=f"http://localhost:{frontend}",
            backend=f"http://127.0.0.1:{backend}",
            process=make(target, str(frontend), str(backend), log, env or {}, root),
            log=log,
        )
        try:
            app.wait_until_up()
        except NotUp:
            with log.open("rb") as written:
                written.seek(start)
                taken = b"already in use" in written.read()
            if taken and attempts < PORT_ATTEMPTS:
                continue
            raise
        return app


def restart_app(app: RunningApp, env: dict[str, str]) -> float:
    """Stop `make run` and start it again on the same ports (the page's address
    and its backend's stay the same); the seconds the app was away."""
    app.stop()
    stopped = time.perf_counter()
    frontend = app.url.rsplit(":", 1)[1]
    backend = app.backend.rsplit(":", 1)[1]
    app.process = make("run", frontend, backend, app.log, env)
    app.wait_until_up()
    return time.perf_counter() - stopped


def stored_sessions(states_dir: Path) -> list[ServerSession]:
    """The live sessions the app started with REFLEX_STATES_WORKDIR=`states_dir` keeps
    on disk, decrypted with the key it generated (the test reads them as an attacker
    with the server's files and its key would)."""
    folder = states_dir.with_name(states_dir.name + "-sessions")
    fernet = Fernet((ROOT / KEY_FILE).read_bytes().strip())
    found = []
    for path in folder.glob("[0-9a-f]*"):
        try:
            expiry, _, sealed = path.read_bytes().partition(b"\n")
        except FileNotFoundError:
            continue  # ended meanwhile
        if float(expiry) < time.time():
            continue
        try:
            data = json.loads(fernet.decrypt(sealed))
        except InvalidToken:
            continue  # not sealed: a replay marker (jti) holds no secret
        if isinstance(data, dict) and data.get("access_token"):
            found.append(ServerSession(**data))
    return found


def wait_for_sessions(states_dir: Path, count: int) -> list[ServerSession]:
    """The active sessions on disk, once there are `count` (writes are debounced)."""
    found: list[ServerSession] = []

    def counted() -> bool:
        found[:] = stored_sessions(states_dir)
        return len(found) == count

    wait_until(counted, what=f"{count} active sessions on disk", timeout=15, interval=0.2)
    return found
