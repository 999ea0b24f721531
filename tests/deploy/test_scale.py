"""Two backends on one Redis behind nginx: a user's requests and events may land
on either, and a signed-in user stays signed in when the backend that served the
login stops, and when both restart."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import ping_private, sign_in, sign_out
from tests.support.deploy import StaticSite, backend, start_backends, start_nginx
from tests.support.net import free_port
from tests.support.processes import Server
from tests.support.redis import start_redis

UPSTREAM = re.compile(r"127\.0\.0\.1:(\d+)")


@dataclass
class Cluster:
    site: StaticSite
    backends: dict[int, Server]
    access_log: Path

    def wait_until_routed(self, timeout: float = 30) -> None:
        """Until nginx passes requests on again: after every backend was down, it
        waits `fail_timeout` before it tries them (a few answers in a row, so that
        round robin has reached each backend)."""
        deadline = time.monotonic() + timeout
        in_a_row = 0
        while in_a_row < 2 * len(self.backends):
            assert time.monotonic() < deadline, "nginx did not route to the backends again"
            answer = httpx2.get(self.site.url + "/_reflex/ping", timeout=5)
            in_a_row = in_a_row + 1 if answer.text == '"pong"' else 0
            time.sleep(0.2)

    def backends_in_log(self, since: int = 0) -> list[int]:
        """The backend ports nginx logged as answering, from byte `since` on
        (a request retried on the next backend names both: the last one answered)."""
        lines = self.access_log.read_text()[since:].splitlines()
        return [int(found[-1]) for line in lines if (found := UPSTREAM.findall(line))]

    def served(self, method: str, path: str) -> int:
        """The backend port that answered the last `method path` nginx logged."""
        lines = [
            line
            for line in self.access_log.read_text().splitlines()
            if line.startswith(f"{method} {path} ")
        ]
        assert lines, f"nginx logged no {method} {path}"
        return int(UPSTREAM.findall(lines[-1])[-1])


@pytest.fixture(scope="module")
def cluster(site: StaticSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scale")
    redis = start_redis(tmp)
    ports = [free_port(), free_port()]
    # Same working directory, so both sign with the embedded provider's one key
    # (.idp/); on several machines give them the same IDP_SIGNING_KEY instead.
    servers = {
        port: backend(f"backend-{port}", port, site.url, tmp, REFLEX_REDIS_URL=redis.url)
        for port in ports
    }
    nginx: Server | None = None
    try:
        start_backends(*servers.values())
        nginx = start_nginx(tmp / "nginx", site, ports)
        yield Cluster(site, servers, tmp / "nginx" / "access.log")
    finally:
        if nginx:
            nginx.stop()
        for server in servers.values():
            server.stop()
        redis.stop()


def test_session_survives_losing_the_login_backend_and_restarting_both(
    cluster: Cluster, page: Page
) -> None:
    sign_in(page, cluster.site.url)
    ping_private(page)
    # The backend that set the session cookie; the other one must carry on alone.
    login = cluster.served("GET", "/auth/session")
    other = next(port for port in cluster.backends if port != login)
    cluster.backends[login].stop()
    assert not cluster.backends[login].running()
    ping_private(page)

    # Both down, both up again: sessions, page state and the provider's keys
    # are outside the processes.
    cluster.backends[other].stop()
    start_backends(*cluster.backends.values())
    cluster.wait_until_routed()
    ping_private(page)
    page.click("#nav-profile")
    expect(page.locator("#profile-name")).to_have_text("Alice")
    page.goto(cluster.site.url + "/ping")
    sign_out(page, cluster.site.url)


def test_both_backends_serve_and_a_new_sign_in_works_on_either(
    cluster: Cluster, page: Page
) -> None:
    # Fresh sign-ins alternate over the backends; each step may land on either.
    since = cluster.access_log.stat().st_size
    for _ in range(2):
        sign_in(page, cluster.site.url, "bob")
        ping_private(page)
        sign_out(page, cluster.site.url)
    assert set(cluster.backends_in_log(since)) == set(cluster.backends)
