"""An earlier commit of this repository, checked out next to it, for "before / after"
figures measured in one benchmark run (`--baseline REF` of the benchmarks).

The checkout is a git worktree in the system's temporary folder, kept between runs
(its `.web` build then stays warm). It shares this checkout's `.venv` and `.tools`,
so it runs with this checkout's Python packages: a REF must pin a subset of them
(a package added since, such as sniffio, is then present in both runs); one that
pins anything else is refused rather than installed over the shared environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = (".venv", ".tools")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def _pins(requirements: str) -> set[str]:
    """The requirement lines of a requirements file (its comments pin nothing)."""
    return {line.strip() for line in requirements.splitlines() if line.split("#", 1)[0].strip()}


def checkout(ref: str) -> tuple[Path, str]:
    """A worktree of `ref` sharing this checkout's tools; its path and short commit."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    short = commit[:9]
    for name in REQUIREMENTS:
        theirs = _pins(_git("show", f"{commit}:{name}"))
        if not theirs <= _pins((ROOT / name).read_text()):
            raise SystemExit(f"{ref} pins other packages in {name}: no shared .venv possible")
    tree = Path(tempfile.gettempdir()) / f"pingapp-baseline-{short}"
    if not (tree / ".git").exists():
        _git("worktree", "add", "--force", "--detach", str(tree), commit)
    for name in SHARED:
        link = tree / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    # The checkout's requirements are newer than the shared .venv's install stamps;
    # `make` would reinstall. They are the same files, so date them back.
    for name in REQUIREMENTS:
        os.utime(tree / name, (0, 0))
    return tree, short


def _cpu_times() -> tuple[int, int]:
    with Path("/proc/stat").open() as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    return values[3] + values[4], sum(values)  # idle + iowait, all


def wait_for_quiet(idle: float = 0.8, longest: float = 180) -> float:
    """Until the machine's CPUs were `idle` (a fraction) over one second, or
    `longest` seconds passed (a build that just ended leaves a busy minute); the
    idle fraction last seen."""
    seen = 0.0
    for _ in range(int(longest)):
        idle_before, total_before = _cpu_times()
        time.sleep(1)
        idle_after, total_after = _cpu_times()
        seen = (idle_after - idle_before) / max(1, total_after - total_before)
        if seen >= idle:
            break
    return seen


def add_argument(
    parser: argparse.ArgumentParser,
    help: str = "also measure this earlier commit (a git worktree), first: before / after",
) -> None:
    """The benchmarks' `--baseline REF` option."""
    parser.add_argument("--baseline", metavar="REF", help=help)
