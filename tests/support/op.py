"""The independent OpenID Provider (npm `oidc-provider`, run by
tests/e2e/independent_op/server.mjs) started on a free port for one test module."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.net import NotUp, free_port, wait_until
from tests.support.processes import ROOT, stop_process_group

OP_DIR = ROOT / "tests" / "e2e" / "independent_op"
OP_START_TIMEOUT = 30  # seconds
USER = "ada"  # the dev login form takes any login; server.mjs derives the claims from it
NAME = "Ada Independent"
EMAIL = "ada@independent.example"


def installed() -> Path:
    """The provider's node_modules, installed from the lock file when missing."""
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            msg = "npm is needed to install the independent provider"
            raise RuntimeError(msg)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=OP_DIR, check=True, stdin=subprocess.DEVNULL
        )
    return OP_DIR


def new_issuer() -> str:
    """An issuer URL on a free port. The app only talks to the provider at sign-in, so
    it can start first, and the provider once the app's address is known."""
    return f"http://localhost:{free_port()}"


@dataclass
class RunningOP:
    issuer: str
    process: subprocess.Popen

    def stop(self) -> None:
        stop_process_group(self.process, timeout=10)


def start_op(
    issuer: str, *, frontend: str, backend: str, log: Path, env: dict[str, str] | None = None
) -> RunningOP:
    """oidc-provider at `issuer`, with the app's callback (at `frontend`) and its
    back-channel logout URI (at `backend`) registered; `env` adds server.mjs's
    options (RESOURCE=...)."""
    node = shutil.which("node")
    if node is None:
        msg = "node is needed to run the independent provider"
        raise RuntimeError(msg)
    port = issuer.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [node, "server.mjs", port],
        cwd=installed(),
        env={**os.environ, "FRONTEND": frontend, "BACKEND": backend, **(env or {})},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    discovery = issuer + "/.well-known/openid-configuration"

    def serves_its_issuer() -> bool:
        try:
            return httpx.get(discovery, timeout=2).json().get("issuer") == issuer
        except ValueError:
            return False  # up, but not answering JSON yet

    try:
        wait_until(
            serves_its_issuer,
            what=f"oidc-provider at {discovery}",
            timeout=OP_START_TIMEOUT,
            interval=0.2,
            alive=lambda: process.poll() is None,
            log=log,
        )
    except NotUp:
        stop_process_group(process, timeout=10, signum=signal.SIGKILL)
        raise
    return RunningOP(issuer, process)
