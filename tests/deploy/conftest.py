"""Real deploys for the tests: the static export, nginx from deploy/nginx.conf,
backends started with `make backend`, a Redis server, all on 127.0.0.1.

Everything builds into, and runs from, the repository these tests are in.
The export is made once per session for one public origin (nginx's port) and
copied out of `.web/`, so a later `make prod` cannot change what nginx serves.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ROOT, browser, free_port, sign_in_at_provider

__all__ = ["browser"]  # the session's Chromium, shared with tests/e2e

HERE = Path(__file__).resolve().parent
SAMPLE = ROOT / "deploy" / "nginx.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
REDIS = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
PUBLIC_MESSAGE = "Hello from a public endpoint!"
PRIVATE_MESSAGE = "Hello from a private endpoint!"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect these tests only when asked for by path (`pytest tests/deploy`).

    `make test-fast` runs `pytest tests --ignore=tests/e2e`: browser tests in
    that process would break its asyncio tests (TOOLCHAIN.md) and double its time.
    """
    asked = [Path(str(arg).split("::")[0]).resolve() for arg in config.args]
    if any(path == HERE or HERE in path.parents for path in asked):
        return None
    return True


@dataclass
class Server:
    """A process started by a test, stopped with its whole process group."""

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
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def wait_until(self, url: str, answer: str, timeout: float = 60) -> None:
        """Until GET `url` answers with `answer` in its body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                pytest.fail(f"{self.name} exited:\n{self.log.read_text()[-4000:]}")
            try:
                if answer in httpx.get(url, timeout=5).text:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"{self.name} did not answer {url} in {timeout} s:\n{self.log.read_text()}")


def start_redis(tmp: Path) -> Server:
    port = free_port()
    redis = Server(
        "redis",
        [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        {},
        tmp / "redis.log",
    ).start()
    deadline = time.monotonic() + 20
    while "Ready to accept connections" not in redis.log.read_text():
        if time.monotonic() > deadline or not redis.running():
            pytest.fail(f"redis-server did not start:\n{redis.log.read_text()}")
        time.sleep(0.1)
    redis.env["url"] = f"redis://127.0.0.1:{port}/0"
    return redis


def backend(name: str, port: int, public_url: str, tmp: Path, **env: str) -> Server:
    """`make backend` on `port` for the origin `public_url` (not started yet)."""
    return Server(
        name,
        ["make", "--no-print-directory", "backend"],
        {
            "BACKEND_PORT": str(port),
            "PUBLIC_URL": public_url,
            "GRANIAN_WORKERS": "1",  # one process per backend: two cores in CI
            **env,
        },
        tmp / f"{name}.log",
    )


def start_backends(*backends: Server) -> None:
    # One after the other: two `reflex run` starting together race on the state
    # folder (reflex 0.10.1 unlinks its files without missing_ok) and one crashes.
    for server in backends:
        server.start()
        server.wait_until(f"http://127.0.0.1:{server.env['BACKEND_PORT']}/_reflex/ping", "pong")


@dataclass(frozen=True)
class StaticSite:
    url: str
    port: int
    root: Path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticSite:
    """`make export` for one public origin, copied out of `.web/`."""
    port = free_port()
    url = f"http://localhost:{port}"
    log = tmp_path_factory.mktemp("export") / "make-export.log"
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "--no-print-directory", "export", f"PUBLIC_URL={url}"],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
    if done.returncode:
        pytest.fail(f"make export failed:\n{log.read_text()[-4000:]}")
    print(f"\nmake export: {time.perf_counter() - started:.1f} s")
    root = tmp_path_factory.mktemp("site") / "client"
    shutil.copytree(ROOT / ".web" / "build" / "client", root)
    return StaticSite(url=url, port=port, root=root)


def render_nginx(sample: str, *, port: int, root: Path, backends: list[int]) -> str:
    """The sample site config with this test's port, site and backends."""
    site, listens = re.subn(r"(?m)^(\s*)listen \d+;", rf"\1listen 127.0.0.1:{port};", sample)
    site, roots = re.subn(r"(?m)^(\s*)root \S+;", rf"\1root {root};", site)
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in backends)
    site, upstreams = re.subn(r"(?m)^\s*server 127\.0\.0\.1:\d+ .*\n", "", site)
    site = site.replace("upstream pingapp_backend {\n", "upstream pingapp_backend {\n" + servers)
    # The site's own access log (paths only) gives way to the test's, which records
    # the upstream each request went to.
    site, logs = re.subn(r"(?m)^\s*access_log /\S+ pingapp_paths;.*\n", "", site)
    assert (listens, roots, upstreams, logs) == (1, 1, 2, 1), "deploy/nginx.conf changed shape"
    return site


def start_nginx(
    tmp: Path, site: StaticSite, backends: list[int], *, worker_connections: int = 512
) -> Server:
    """nginx in the foreground with everything (pid, logs, temp files) in `tmp`.

    Each proxied websocket holds two connections: 1,000 sessions need about 2,000.
    """
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "pingapp.conf").write_text(
        render_nginx(SAMPLE.read_text(), port=site.port, root=site.root, backends=backends)
    )
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        # Workers run as root when the tests do: the site is in pytest's 0700 folders.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"worker_rlimit_nofile {2 * worker_connections};\n"
        f"error_log {tmp / 'error.log'} warn;\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    default_type application/octet-stream;\n"
        "    log_format upstream '$request_method $uri $status $upstream_addr';\n"
        f"    access_log {tmp / 'access.log'} upstream;\n"
        f"{temp_paths}"
        f"    include {tmp / 'pingapp.conf'};\n"
        "}\n"
    )
    nginx = Server(
        "nginx",
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
        {},
        tmp / "nginx.out",
    ).start()
    nginx.wait_until(site.url + "/", "<html")
    return nginx


def csp_watch(page: Page) -> list[str]:
    """Every Content-Security-Policy complaint Chromium logs for `page`."""
    complaints: list[str] = []
    page.on(
        "console",
        lambda message: (
            complaints.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return complaints


def sign_in(page: Page, url: str, user: str = "alice") -> None:
    """From the ping page, through the embedded provider, back signed in."""
    page.goto(url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    # Callback, token request, session hop: a cold backend on a busy machine takes a while.
    expect(page.locator("#qsLogoutBtn")).to_be_visible(timeout=20_000)
    # Back where the login started; prod's own server redirects /ping to /ping/.
    expect(page).to_have_url(re.compile(re.escape(url) + "/ping/?$"))


def ping_private(page: Page) -> None:
    """After a reload, a public then a private ping, so each answer is a new one
    (the page state, last message included, outlives a reload)."""
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    message = page.locator("#ping-message")
    page.click("#ping-public")
    expect(message).to_contain_text(PUBLIC_MESSAGE)
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)


def sign_out(page: Page, url: str) -> None:
    """Log out from a page other than home: through the provider's end-session,
    back on the home page, signed out (also after a reload)."""
    assert page.url != url + "/"
    page.click("#qsLogoutBtn")
    page.wait_for_url(url + "/")
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    page.reload()
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()
