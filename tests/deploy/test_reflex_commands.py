"""Plain Reflex commands, typed as a Reflex user would after `make install` and
`. .venv/bin/activate`: no make, no bun on PATH, no REFLEX_* toolchain variables.

rxconfig.py alone points Reflex at the project's bun and Node (.tools/, from the
npm registry); these tests check that Reflex uses them, serves the app, and
prints nothing about the Node version.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging import version
from playwright.sync_api import Page, expect
from reflex_base.constants import Bun, Node

import rxconfig
from tests.support.app import PUBLIC_MESSAGE, RunningApp
from tests.support.deploy import StaticSite, start_nginx
from tests.support.net import free_port
from tests.support.processes import ROOT, Server, descendants, stop_tree

VENV = ROOT / ".venv"
# "Your version (20.20.2) of Node.js is out of date. Upgrade to 22.22.0 or higher."
# "Reflex requires node version 22.22.0 or higher to run, but the detected version is ..."
NODE_WARNING = re.compile(r"node(\.js)? (is out of date|version)", re.IGNORECASE)
# What Reflex prints when it falls back to installing bun itself.
BUN_DOWNLOAD = re.compile(r"bun_install|Installing https|Failed to download", re.IGNORECASE)


def activated_env(**extra: str) -> dict[str, str]:
    """The tests' environment as `. .venv/bin/activate` would leave a clean shell:
    the venv's bin first on PATH, no bun on PATH, no REFLEX_* or npm settings."""
    tools = (ROOT / ".tools").resolve()
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry
        and not (Path(entry) / "bun").exists()
        and tools not in Path(entry).resolve().parents
    ]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(("REFLEX_", "NPM_CONFIG_", "BUN_"))
    }
    env["PATH"] = os.pathsep.join([str(VENV / "bin"), *path])
    env["VIRTUAL_ENV"] = str(VENV)
    assert shutil.which("bun", path=env["PATH"]) is None
    return {**env, **extra}


def reflex(*args: str) -> list[str]:
    """`reflex ...` as the activated shell finds it."""
    found = shutil.which("reflex", path=activated_env()["PATH"])
    assert found is not None
    assert Path(found).parent == VENV / "bin"
    return [found, *args]


def executables(pids: list[int]) -> set[Path]:
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            found.add(Path(f"/proc/{pid}/exe").readlink())
    return found


def ping_public(page: Page, url: str) -> None:
    page.goto(url + "/ping")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)


def assert_quiet(log: Path) -> None:
    text = log.read_text()
    assert not NODE_WARNING.search(text), text[-4000:]
    assert not BUN_DOWNLOAD.search(text), text[-4000:]


def test_make_install_and_rxconfig_name_the_same_tools() -> None:
    """The Makefile installs, and rxconfig.py uses, one bun and one Node, both
    versions Reflex accepts (so it neither installs bun nor warns about Node)."""
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", "tool-paths"],
        input="tool-paths:\n\t@echo $(abspath $(BUN)) $(abspath $(NODE))\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    node = rxconfig.NODE_BIN / "node"
    assert printed == [str(rxconfig.BUN), str(node)]
    assert rxconfig.config.bun_path == rxconfig.BUN

    def version_of(executable: Path) -> version.Version:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True)
        return version.parse(out.stdout.strip())

    assert version_of(rxconfig.BUN) >= version.parse(Bun.MIN_VERSION)
    assert version_of(node) >= version.parse(Node.MIN_VERSION)


@pytest.fixture(scope="module")
def dev_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, set[Path]]]:
    """`reflex run` on free ports; also yields the executables of its process tree."""
    frontend, backend = free_port(), free_port()
    log = tmp_path_factory.mktemp("reflex-run") / "reflex-run.log"
    process = subprocess.Popen(
        reflex("run", "--frontend-port", str(frontend), "--backend-port", str(backend)),
        cwd=ROOT,
        env=activated_env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    app = RunningApp(
        url=f"http://localhost:{frontend}",
        backend=f"http://127.0.0.1:{backend}",
        process=process,
        log=log,
    )
    tree: list[int] = []
    try:
        app.wait_until_up()
        tree = descendants(process.pid)
        yield app, executables(tree)
    finally:
        stop_tree(process, tree or descendants(process.pid))


def test_reflex_run_serves_the_public_ping_with_the_projects_tools_and_no_warning(
    dev_app: tuple[RunningApp, set[Path]], page: Page
) -> None:
    app, running = dev_app
    ping_public(page, app.url)
    # The frontend runs on the project's bun and Node, not the machine's Node 20.
    assert rxconfig.BUN.resolve() in running
    assert (rxconfig.NODE_BIN / "node").resolve() in running
    assert_quiet(app.log)


@pytest.fixture(scope="module")
def exported_behind_nginx(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StaticSite, list[Path]]]:
    """`reflex export --frontend-only` for nginx's origin, served by nginx, with one
    `reflex run --backend-only --env prod` behind it; also yields the two logs."""
    tmp = tmp_path_factory.mktemp("reflex-export")
    port, backend_port = free_port(), free_port()
    url = f"http://localhost:{port}"
    # The one setting a static export needs: the origin its pages call (Reflex's own).
    public = {"REFLEX_API_URL": url, "REFLEX_DEPLOY_URL": url}
    log = tmp / "reflex-export.log"
    done = subprocess.run(
        reflex("export", "--frontend-only", "--no-zip"),
        cwd=ROOT,
        env=activated_env(**public),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, log.read_text()[-4000:]
    root = tmp / "site" / "client"
    shutil.copytree(ROOT / ".web" / "build" / "client", root)
    site = StaticSite(url=url, port=port, root=root)

    server = Server(
        "backend",
        reflex("run", "--backend-only", "--env", "prod", "--backend-port", str(backend_port)),
        activated_env(**public, GRANIAN_WORKERS="1"),
        tmp / "backend.log",
        inherit_env=False,
    ).start()
    nginx: Server | None = None
    try:
        server.wait_until(f"http://127.0.0.1:{backend_port}/_reflex/ping", "pong")
        nginx = start_nginx(tmp / "nginx", site, [backend_port])
        yield site, [log, server.log]
    finally:
        if nginx:
            nginx.stop()
        server.stop()


def test_reflex_export_behind_nginx_with_a_reflex_backend_serves_the_public_ping(
    exported_behind_nginx: tuple[StaticSite, list[Path]], page: Page
) -> None:
    site, logs = exported_behind_nginx
    ping_public(page, site.url)
    for log in logs:
        assert_quiet(log)
