"""Reflex configuration. pingapp's own settings live in pingapp/settings.py.

Plain `reflex run`, `reflex run --env prod`, `reflex export` and `reflex run
--backend-only` work from the project folder with the virtual environment
activated and nothing else set: this file points Reflex at the JavaScript tools
`make install` put in `.tools/` (both from the npm registry), so Reflex never
runs its own bun installer, which downloads a script from outside the package
registries.

- bun: `bun_path` below, the link `.tools/bun` that `make install` makes to the
  package it chose for this machine (the Makefile is the one place that chooses).
- Node: Reflex finds `node` on PATH and warns when it is older than it wants
  (`constants.Node.MIN_VERSION`, 22.22.0 for reflex 0.10.1); the machine's may be
  older, so the folder holding the project's Node goes first on PATH, for Reflex
  and the processes it starts.
- Telemetry off (`telemetry_enabled`); environment defaults that have no config
  field: no PyPI version check, and the npm registry npm itself is configured
  with (Reflex would otherwise time several registries, one of them a mirror).

Each can still be overridden from the environment (REFLEX_BUN_PATH,
REFLEX_CHECK_LATEST_VERSION, NPM_CONFIG_REGISTRY, ...). Ports are given on the
command line (`--frontend-port`, `--backend-port`; the Makefile passes
FRONTEND_PORT and BACKEND_PORT).
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import reflex as rx
from reflex_base.constants import ReactRouter
from reflex_base.plugins.base import Plugin

from pingapp.web.headers import add_to_vite_config, dev_policy, externalize_site

TOOLS = Path(__file__).resolve().parent / ".tools"
# What the Makefile installs (its BUN and NODE), by paths that name neither the
# machine nor a version: the Makefile alone chooses bun's build for this machine
# (@oven/bun-<os>-<arch>[-baseline]) and links `.tools/bun` to it; the `node`
# package installs the build for this machine under its own `bin/node`.
BUN = TOOLS / "bun"
NODE_BIN = TOOLS / "node22" / "node_modules" / "node" / "bin"


def _use_project_node() -> None:
    path = os.environ.get("PATH", "")
    if (NODE_BIN / "node").exists() and str(NODE_BIN) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join(filter(None, [str(NODE_BIN), path]))


def _use_npm_registry() -> None:
    """NPM_CONFIG_REGISTRY from npm's own configuration, once: child processes inherit it."""
    if os.environ.get("NPM_CONFIG_REGISTRY") or not (npm := shutil.which("npm")):
        return
    try:
        found = subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
            [npm, "config", "get", "registry"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return
    if found.startswith(("http://", "https://")):
        os.environ["NPM_CONFIG_REGISTRY"] = found


class SecurityHeaders(Plugin):
    """The pages' security headers (pingapp/web/headers.py, docs/security.md 52).

    Dev (`reflex run`): Vite's dev server sends them, through a middleware this
    adds to `.web/vite.config.js` (Reflex writes that file at every compile, and
    applies plugins' changes to it). Build (`reflex export`, `reflex run --env
    prod`): every inline script of the pages moves to a file of its own, so the
    pages' policy needs no 'unsafe-inline' for scripts.
    """

    def pre_compile(self, **context: Any) -> None:
        config = rx.config.get_config()
        dev_csp = dev_policy(config.api_url)
        context["add_modify_task"](
            ReactRouter.VITE_CONFIG_FILE,
            lambda source: add_to_vite_config(source, dev_csp, config.deploy_url),
        )

    def post_build(self, **context: Any) -> None:
        prefix = rx.config.get_config().prepend_frontend_path("/assets/")
        externalize_site(Path(context["static_dir"]), prefix)

    def __repr__(self) -> str:
        return "SecurityHeaders()"


_use_project_node()
_use_npm_registry()
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")

config = rx.Config(
    app_name="pingapp",
    # Listen on loopback unless told otherwise (Reflex's default is 0.0.0.0).
    backend_host=os.environ.get("BACKEND_HOST", "127.0.0.1"),
    # Reflex's own routes (/_event, /ping, /_health, ...) go under /_reflex: a
    # bare /ping would shadow the app's Ping page wherever one port serves both.
    backend_path="/_reflex",
    # Reflex uses this bun when it exists (else it looks on PATH, then installs its own).
    bun_path=BUN,
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="inherit", accent_color="indigo", radius="large")
        ),
        # Security headers from Vite's dev server (make run), and built pages whose
        # scripts all come from files, so no policy needs 'unsafe-inline' for
        # scripts (pingapp/web/headers.py; docs/security.md 52).
        SecurityHeaders(),
    ],
)

# Only the app's own pages may talk to the backend with credentials. Reflex's
# default ("*") echoes any Origin with Access-Control-Allow-Credentials and lets any
# Origin open the event websocket (docs/security.md 30). The app's origin is where the
# browser loads it (deploy_url, which `reflex run` sets from --frontend-port);
# REFLEX_CORS_ALLOWED_ORIGINS (comma-separated) overrides it.
if "REFLEX_CORS_ALLOWED_ORIGINS" not in os.environ and config.deploy_url:
    _own = urlsplit(config.deploy_url)
    config.cors_allowed_origins = [f"{_own.scheme}://{_own.netloc}".lower()]
