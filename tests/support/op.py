"""The independent OpenID Provider (npm `oidc-provider`, run by
tests/e2e/independent_op/server.mjs) started on a free port for one test module."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
from playwright.sync_api import Page, expect

from tests.support.app import RunningApp, start_app
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
            return httpx2.get(discovery, timeout=2).json().get("issuer") == issuer
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


@dataclass
class Independent:
    """The app signing in at the independent provider; `states_dir` holds its sessions."""

    app: RunningApp
    op: str
    states_dir: Path


@contextmanager
def app_at_independent_op(
    tmp_dir: Path, op_env: dict[str, str] | None = None
) -> Iterator[Independent]:
    """The app (`make run`, only AUTH_ISSUER set) and oidc-provider for it. The app
    only talks to the provider at sign-in, so it starts first, and the provider once
    the app's address (its redirect URI) is known."""
    issuer = new_issuer()
    states_dir = tmp_dir / "states"
    states_dir.mkdir()
    app = start_app(
        "run",
        tmp_dir,
        env={"AUTH_ISSUER": issuer, "REFLEX_STATES_WORKDIR": str(states_dir)},
    )
    try:
        op = start_op(
            issuer,
            frontend=app.url,
            backend=app.backend,
            log=tmp_dir / "oidc-provider.log",
            env=op_env,
        )
        try:
            yield Independent(app, issuer, states_dir)
        finally:
            op.stop()
    finally:
        app.stop()


def sign_in_at_oidc_provider(page: Page, op: str) -> None:
    """oidc-provider's development login form, then its consent form."""
    login = page.locator("input[name=login]")
    expect(login).to_be_visible()
    assert page.url.startswith(op + "/interaction/")
    login.fill(USER)
    page.fill("input[name=password]", "any password will do")
    page.click("button[type=submit]")
    consent = page.get_by_role("button", name="Continue")
    expect(consent).to_be_visible()
    consent.click()
