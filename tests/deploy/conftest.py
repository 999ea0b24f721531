"""Fixtures for the deploy tests: the static export, made once per session."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from tests.support.deploy import StaticSite
from tests.support.net import free_port
from tests.support.processes import ROOT


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> StaticSite:
    """`make export` for one public origin (nginx's port), copied out of `.web/` so
    a later `make prod` cannot change what nginx serves."""
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
