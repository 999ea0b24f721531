"""A bad value in `.env`, as a newcomer types it: every way of starting the app
prints one short line that names the variable, and exits non-zero.

Each case runs in a copy of the project (its own `.env`, `.web` and key files),
with the virtual environment and the JavaScript tools linked from this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.net import free_port
from tests.support.processes import ROOT

# What a newcomer mistypes, and the line that must name it.
BAD_VALUES = {
    "SESSION_MAX_AGE=1d": "  - SESSION_MAX_AGE: ",
    "AUTH_ALGORITHMS=HS256": "  - AUTH_ALGORITHMS: ",
    "API_URL=nowhere": "  - API_URL: ",
    "SESSION_ENCRYPTION_KEY=my-secret-key": "  - SESSION_ENCRYPTION_KEY: ",
    "IDP_CODE_TTL=soon": "  - IDP_CODE_TTL: ",
}
# How a newcomer starts it: the README's command, and Reflex's own.
COMMANDS = {
    "make run": ["make", "--no-print-directory", "run"],
    "make prod": ["make", "--no-print-directory", "prod"],
    "reflex run": [".venv/bin/reflex", "run"],
    "reflex run --env prod": [".venv/bin/reflex", "run", "--env", "prod"],
}
# What the worker-process failure used to print instead of the variable's name.
NOISE = ("Traceback", "BrokenProcessPool", "No module named")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files (tracked and new, as `git ls-files` lists them)."""
    copy = tmp_path_factory.mktemp("newcomer") / "pingapp"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for linked in (".venv", ".tools"):
        (copy / linked).symlink_to(ROOT / linked)
    # The stamps make `make install` a no-op, as after a first install.
    return copy


def start(
    project: Path, command: list[str], env_line: str, port: int | None = None
) -> subprocess.CompletedProcess:
    """`command` in `project` with `env_line` as its `.env`, the frontend on `port`."""
    (project / ".env").write_text(env_line + "\n")
    frontend = str(port or free_port())
    args = [*command]
    if args[0] != "make":
        backend = frontend if "prod" in args else str(free_port())
        args += ["--frontend-port", frontend, "--backend-port", backend]
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("REFLEX_", "AUTH", "API_", "SESSION_", "IDP_"))
    }
    env.update(FRONTEND_PORT=frontend, BACKEND_PORT=str(free_port()))
    return subprocess.run(
        args,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("env_line", list(BAD_VALUES))
@pytest.mark.parametrize("how", list(COMMANDS))
def test_a_bad_value_is_named_in_one_line(project: Path, how: str, env_line: str) -> None:
    done = start(project, COMMANDS[how], env_line)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert BAD_VALUES[env_line] in output, output[-3000:]
    assert not any(noise in output for noise in NOISE), output[-3000:]
    # The value itself may be a secret: it is never repeated.
    assert "my-secret-key" not in output


def test_the_issuer_set_to_our_own_provider_is_explained(project: Path) -> None:
    # `make prod` serves everything on FRONTEND_PORT, the provider under /idp.
    port = free_port()
    done = start(project, COMMANDS["make prod"], f"AUTH_ISSUER=http://localhost:{port}/idp", port)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "is this app's own /idp" in output
    assert "Remove AUTH_ISSUER" in output
    assert "Traceback" not in output
