"""The deploy set-up of docs/deploy.md: backends started by `make backend`, the
static export served by nginx with the site config from deploy/nginx.conf."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import ROOT, Server

SAMPLE = ROOT / "deploy" / "nginx.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")


@dataclass(frozen=True)
class StaticSite:
    url: str
    port: int
    root: Path


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
