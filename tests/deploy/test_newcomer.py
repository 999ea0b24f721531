"""A newcomer's first ten minutes (issue 27): a fresh clone, `make run`, a served
page, and nothing left behind for `git status`; `make help` names every target.

The clone is of this repository's HEAD (what a newcomer gets), with `.venv` and
`.tools` linked from this checkout so nothing is installed again; everything else
`make run` writes (`.web`, the provider's key, the session key, ...) is the clone's own.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.support.app import RunningApp
from tests.support.net import free_port
from tests.support.processes import ROOT, descendants, stop_tree

# What Reflex prints when it sets up .web (advice for uv projects); make run hides it.
UV_HINT = "uv run reflex run"


def phony_targets(makefile: Path) -> list[str]:
    """The targets the Makefile's `.PHONY:` lines name (continuation lines included)."""
    text = makefile.read_text().replace("\\\n", " ")
    return [
        target
        for line in text.splitlines()
        if line.startswith(".PHONY:")
        for target in line.removeprefix(".PHONY:").split()
    ]


def git(clone: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=clone, capture_output=True, text=True, check=True
    ).stdout


def newcomer_env(**extra: str) -> dict[str, str]:
    """The tests' environment without what a newcomer's shell would not have: the
    outer make's flags (under `make test-deploy`) and Reflex or npm settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
        and not name.upper().startswith(("REFLEX_", "NPM_CONFIG_", "BUN_"))
    }
    return {**env, **extra}


def fresh_clone(parent: Path) -> Path:
    """A `git clone` of HEAD, with this checkout's installs linked in."""
    clone = parent / "pingapp"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    for name in (".venv", ".tools"):
        (clone / name).symlink_to(ROOT / name)
    assert git(clone, "status", "--porcelain") == ""
    return clone


def test_make_run_in_a_fresh_clone_serves_the_app_and_leaves_git_status_clean(
    tmp_path: Path,
) -> None:
    clone = fresh_clone(tmp_path)
    frontend, backend = free_port(), free_port()
    log = tmp_path / "make-run.log"
    started = time.perf_counter()
    process = subprocess.Popen(
        ["make", "run"],
        cwd=clone,
        env=newcomer_env(FRONTEND_PORT=str(frontend), BACKEND_PORT=str(backend)),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a group of its own, as a terminal's foreground job
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
        print(f"\nmake run in a fresh clone: served after {time.perf_counter() - started:.1f} s")
        tree = descendants(process.pid)
    finally:
        # Ctrl-C in the newcomer's terminal: SIGINT to make's process group.
        stop_tree(process, tree or descendants(process.pid), signum=signal.SIGINT, timeout=30)
    output = log.read_text()
    # Ctrl-C ended it (make passes on the SIGINT), without the SIGKILL fallback.
    assert process.returncode != -signal.SIGKILL, output[-4000:]
    assert git(clone, "status", "--porcelain") == "", output[-4000:]
    # Reflex set up .web for the first time; its advice for uv projects is not shown.
    assert (clone / ".web" / "package.json").exists()
    assert UV_HINT not in output


def test_make_help_lists_every_phony_target_on_a_line_of_its_own() -> None:
    targets = phony_targets(ROOT / "Makefile")
    assert {"help", "install", "run", "test"} <= set(targets)
    outputs = [
        subprocess.run(
            ["make", "--no-print-directory", *goal],
            cwd=ROOT,
            env=newcomer_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for goal in (["help"], [])  # plain `make` is `make help`
    ]
    assert outputs[0] == outputs[1]
    listed = re.findall(r"^ +([a-z][a-z0-9-]*) ", outputs[0], re.MULTILINE)
    assert sorted(listed) == sorted(targets), outputs[0]
