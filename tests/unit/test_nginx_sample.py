"""deploy/nginx.conf with a real nginx in front of a stand-in backend on 127.0.0.1.

The proxied locations (/api, /auth, /idp, /_reflex and the API's RFC 9728
metadata) get the static site's security headers, each once; the pages get
pingapp.web.headers' policy and headers, the very values `make prod` sends; HSTS goes
out over https only; access logs name paths without query strings, so `?code=`,
`?state=` and `?ticket=` never reach a log file. The sample is rendered the way
tests/deploy/conftest.py does (port, root, backends), plus its log path (and, for
https, a certificate). Skipped where nginx is not installed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pingapp.web.headers import PAGE_HEADERS, PAGE_POLICY
from tests.support.net import free_port

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = os.environ.get("NGINX", "/usr/sbin/nginx")
SECRET = "c0de-that-must-not-be-logged"
# The pages' headers but their policy (the backend's pages send their own).
STATIC_HEADERS = {
    name.lower(): value for name, value in PAGE_HEADERS.items() if name != "Content-Security-Policy"
}
HSTS = "max-age=31536000; includeSubDomains"

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
    #: What a client checks the server's certificate with (https).
    verify: ssl.SSLContext | bool = True


def render(
    sample: str,
    *,
    port: int,
    root: Path,
    backend: int,
    log: Path,
    tls: tuple[Path, Path] | None = None,
) -> str:
    listen = f"listen 127.0.0.1:{port};"
    if tls:  # what docs/deploy.md's Production checklist asks for, with a test certificate
        listen = (
            f"listen 127.0.0.1:{port} ssl; ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]};"
        )
    site, listens = re.subn(r"(?m)^(\s*)listen \d+;", rf"\1{listen}", sample)
    site, roots = re.subn(r"(?m)^(\s*)root \S+;", rf"\1root {root};", site)
    site, upstreams = re.subn(r"(?m)^\s*server 127\.0\.0\.1:\d+ .*\n", "", site)
    site = site.replace(
        "upstream pingapp_backend {\n",
        f"upstream pingapp_backend {{\n    server 127.0.0.1:{backend};\n",
    )
    site, logs = re.subn(r"(?m)^(\s*access_log )/\S+( pingapp_paths;)", rf"\g<1>{log}\2", site)
    assert (listens, roots, upstreams, logs) == (1, 1, 2, 1), "deploy/nginx.conf changed shape"
    return site


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with running_sample(tmp_path_factory.mktemp("nginx")) as running:
        yield running


@pytest.fixture(scope="module")
def https_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("nginx-https")
    with running_sample(tmp, tls=certificate(tmp)) as running:
        yield running


@contextmanager
def running_sample(tmp: Path, tls: tuple[Path, Path] | None = None) -> Iterator[Site]:
    """nginx with the sample site in `tmp`, in front of a stand-in backend."""
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    backend.daemon_threads = True
    threading.Thread(target=backend.serve_forever, args=(0.05,), daemon=True).start()
    root = tmp / "client"
    root.mkdir()
    (root / "index.html").write_text("<html>home</html>")
    (root / "callback.html").write_text("<html>callback</html>")
    (root / "__spa-fallback.html").write_text("<html>spa</html>")
    port = free_port()
    log = tmp / "pingapp.access.log"
    (tmp / "pingapp.conf").write_text(
        render(
            SAMPLE.read_text(),
            port=port,
            root=root,
            backend=backend.server_address[1],
            log=log,
            tls=tls,
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
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
    try:
        for _ in range(1500):  # until it listens: a readiness wait, not a timing
            try:
                httpx2.get(url + "/", timeout=5, verify=verify)
                break
            except httpx2.TransportError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                time.sleep(0.02)
        yield Site(url, log, verify)
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        backend.shutdown()
        backend.server_close()
        shutil.rmtree(tmp / "proxy", ignore_errors=True)


PROXIED = [
    "/api/public",
    "/auth/session",
    "/idp/authorize",
    "/_reflex/ping",
    "/.well-known/oauth-protected-resource/api",
]


@pytest.mark.parametrize("path", PROXIED)
def test_proxied_answers_carry_the_security_headers_once(site: Site, path: str) -> None:
    response = httpx2.get(site.url + path)
    assert response.status_code == 200
    assert response.json() == {"ok": True}  # the backend's answer
    for name, value in STATIC_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    # The backend's JSON keeps no page policy of the static site.
    assert "content-security-policy" not in response.headers
    assert "strict-transport-security" not in response.headers  # plain http


def test_other_well_known_paths_are_not_the_backends(site: Site) -> None:
    # The static site's SPA fallback, not the backend's JSON.
    response = httpx2.get(site.url + "/.well-known/oauth-protected-resource")
    assert response.text == "<html>spa</html>"


@pytest.mark.parametrize("path", ["/", "/callback"])
def test_the_pages_carry_the_apps_policy_and_headers(site: Site, path: str) -> None:
    response = httpx2.get(site.url + path)
    assert response.status_code == 200
    # The very policy `make prod` sends (pingapp.web.headers): no 'unsafe-eval', no
    # 'unsafe-inline' for scripts, no framing.
    assert response.headers.get_list("content-security-policy") == [PAGE_POLICY]
    for name, value in STATIC_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in response.headers  # plain http


@pytest.mark.parametrize("path", ["/", "/callback", *PROXIED])
def test_https_answers_carry_hsts(https_site: Site, path: str) -> None:
    response = httpx2.get(https_site.url + path, verify=https_site.verify)
    assert response.status_code == 200
    assert response.headers.get_list("strict-transport-security") == [HSTS]


def test_access_logs_have_paths_without_query_strings(site: Site) -> None:
    urls = [
        f"/callback?code={SECRET}&state=s",
        f"/auth/session?ticket={SECRET}",
        f"/idp/authorize?client_id=x&code_challenge={SECRET}",
        f"/api/public?access_token={SECRET}",
    ]
    for url in urls:
        httpx2.get(site.url + url)
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
