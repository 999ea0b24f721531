"""Start pingapp the way a user does (`make run`, `make prod`) and drive Chromium.

Each app start is module-scoped: the dev and prod runs share `.web/`, so they
run one after the other, never together.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urljoin

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from pingapp.auth.session import KEY_FILE, ServerSession

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# What works on this machine (TOOLCHAIN.md): no sandbox as root, and nothing
# that reaches for the closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 420  # seconds: a cold prod build on 2 cores takes a while


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RunningApp:
    """An app started by make; `url` is where the browser goes."""

    url: str
    backend: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        stop_process_group(self.process)


def stop_process_group(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM to a process started with start_new_session=True and its children;
    SIGKILL if they are still there after `timeout` seconds."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_until_up(app: RunningApp) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            pytest.fail(f"the app exited with {app.process.returncode}:\n{app.log.read_text()}")
        try:
            page = httpx.get(app.url + "/ping", timeout=5, follow_redirects=True)
            health = httpx.get(app.backend + "/_reflex/ping", timeout=5)
            if page.status_code == 200 and "<html" in page.text and health.text == '"pong"':
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    app.stop()
    pytest.fail(f"the app did not come up in {START_TIMEOUT} s:\n{app.log.read_text()[-4000:]}")


def start_app(target: str, tmp_dir: Path, env: dict[str, str] | None = None) -> RunningApp:
    """`make <target>` on free ports, with the app's settings from `env`."""
    frontend = free_port()
    backend = frontend if target == "prod" else free_port()
    log = tmp_dir / f"make-{target}.log"
    process = subprocess.Popen(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        env={
            **os.environ,
            "FRONTEND_PORT": str(frontend),
            "BACKEND_PORT": str(backend),
            **(env or {}),
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # so the whole tree (reflex, bun, vite) can be stopped
    )
    app = RunningApp(
        url=f"http://localhost:{frontend}",
        backend=f"http://127.0.0.1:{backend}",
        process=process,
        log=log,
    )
    wait_until_up(app)
    return app


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context()
    context.set_default_timeout(20_000)
    yield context
    context.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def sign_in_at_provider(
    page: Page, user: str = "alice", *, allow: bool = True, untick: tuple[str, ...] = ()
) -> None:
    """Fill the embedded provider's forms as a person would: sign in (unless the
    provider's session already knows the browser), then consent."""
    page.wait_for_selector("#username, #consent-allow")
    if page.locator("#username").count():
        page.fill("#username", user)
        page.fill("#password", user)
        page.click("#signin")
        page.wait_for_load_state()
    if page.locator("#consent-allow").count():
        for scope in untick:
            page.uncheck("#scope-" + scope.replace(":", "-"))
        page.click("#consent-allow" if allow else "#consent-deny")


def consent_without_following(page: Page) -> str:
    """Press Allow on the embedded provider's consent page without following the
    redirect back: the callback URL (code, state, iss) the browser would have loaded."""
    action, fields = page.evaluate(
        """() => {
            const form = document.querySelector('form');
            const data = new FormData(form, document.getElementById('consent-allow'));
            return [form.action, [...data.entries()]];
        }"""
    )
    answer = page.request.post(
        urljoin(page.url, action),
        data=urlencode([tuple(pair) for pair in fields]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    return answer.headers["location"]


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
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(sessions := stored_sessions(states_dir)) == count:
            return sessions
        time.sleep(0.2)
    pytest.fail(f"expected {count} active server-side sessions on disk")
