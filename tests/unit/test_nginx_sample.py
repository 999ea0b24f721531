"""deploy/nginx.conf with a real nginx in front of a stand-in backend on 127.0.0.1.

The proxied locations (/api, /auth, /idp, /_reflex) get the static site's
security headers, each once; access logs name paths without query strings, so
`?code=`, `?state=` and `?ticket=` never reach a log file. The sample is rendered
the way tests/deploy/conftest.py does (port, root, backends), plus its log path.
Skipped where nginx is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import free_port

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SECRET = "c0de-that-must-not-be-logged"
STATIC_HEADERS = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")


class Backend(BaseHTTPRequestHandler):
    """Answers everything with 200; /idp pages send their own copies of two headers."""

    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.path.startswith("/idp/"):
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@dataclass
class Site:
    url: str
    access_log: Path


def render(sample: str, *, port: int, root: Path, backend: int, log: Path) -> str:
    site, listens = re.subn(r"(?m)^(\s*)listen \d+;", rf"\1listen 127.0.0.1:{port};", sample)
    site, roots = re.subn(r"(?m)^(\s*)root \S+;", rf"\1root {root};", site)
    site, upstreams = re.subn(r"(?m)^\s*server 127\.0\.0\.1:\d+ .*\n", "", site)
    site = site.replace(
        "upstream pingapp_backend {\n",
        f"upstream pingapp_backend {{\n    server 127.0.0.1:{backend};\n",
    )
    site, logs = re.subn(r"(?m)^(\s*access_log )/\S+( pingapp_paths;)", rf"\g<1>{log}\2", site)
    assert (listens, roots, upstreams, logs) == (1, 1, 2, 1), "deploy/nginx.conf changed shape"
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("nginx")
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    backend.daemon_threads = True
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    root = tmp / "client"
    root.mkdir()
    (root / "index.html").write_text("<html>home</html>")
    (root / "callback.html").write_text("<html>callback</html>")
    port = free_port()
    log = tmp / "pingapp.access.log"
    (tmp / "pingapp.conf").write_text(
        render(
            SAMPLE.read_text(),
            port=port,
            root=root,
            backend=backend.server_address[1],
            log=log,
        )
    )
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp / "nginx.conf").write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {tmp / 'http-level.log'};\n"
        f"{temp_paths}"
        f"    include {tmp / 'pingapp.conf'};\n"
        "}\n"
    )
    command = [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")]
    nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1500):  # until it listens: a readiness wait, not a timing
            try:
                httpx.get(url + "/", timeout=5)
                break
            except httpx.TransportError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                time.sleep(0.02)
        yield Site(url, log)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        backend.shutdown()
        backend.server_close()
        shutil.rmtree(tmp / "proxy", ignore_errors=True)


@pytest.mark.parametrize(
    "path", ["/api/public", "/auth/session", "/idp/authorize", "/_reflex/ping"]
)
def test_proxied_answers_carry_the_security_headers_once(site: Site, path: str) -> None:
    response = httpx.get(site.url + path)
    assert response.status_code == 200
    for name, value in STATIC_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    # The backend's JSON keeps no page policy of the static site.
    assert "content-security-policy" not in response.headers


def test_the_pages_still_carry_their_headers(site: Site) -> None:
    response = httpx.get(site.url + "/")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    for name, value in STATIC_HEADERS.items():
        assert response.headers[name] == value


def test_access_logs_have_paths_without_query_strings(site: Site) -> None:
    urls = [
        f"/callback?code={SECRET}&state=s",
        f"/auth/session?ticket={SECRET}",
        f"/idp/authorize?client_id=x&code_challenge={SECRET}",
        f"/api/public?access_token={SECRET}",
    ]
    for url in urls:
        httpx.get(site.url + url)
    log = ""
    for _ in range(3000):  # nginx writes each line when its request ends
        log = site.access_log.read_text() if site.access_log.exists() else ""
        if "/api/public " in log:
            break
        time.sleep(0.01)
    assert '"GET /callback HTTP/1.1" 200' in log
    assert '"GET /auth/session HTTP/1.1" 200' in log
    assert '"GET /api/public HTTP/1.1" 200' in log
    assert SECRET not in log
    assert "?" not in log
