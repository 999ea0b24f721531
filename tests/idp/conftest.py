"""Start the provider under granian on 127.0.0.1 (a free port) for the session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def serve(
    key_dir: Path,
    *,
    workers: int = 1,
    redis_url: str = "",
    factory: str = "tests.idp.serve:build",
    health: str = "/idp/.well-known/openid-configuration",
    env: dict[str, str] | None = None,
    stderr: Any = None,
) -> tuple[str, Any]:
    """Serve `factory` on 127.0.0.1; `env` adds to (or, with "", unsets in) the environment."""
    port = free_port()
    environ = {
        **os.environ,
        "IDP_TEST_PORT": str(port),
        "IDP_TEST_KEY_DIR": str(key_dir),
        "IDP_TEST_REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }
    for name, value in (env or {}).items():
        if value:
            environ[name] = value
        else:
            environ.pop(name, None)
    granian = Path(sys.executable).with_name("granian")
    process = subprocess.Popen(
        [
            str(granian),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "error",
            "--factory",
            factory,
        ],
        cwd=ROOT,
        env=environ,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}{health}", process)
    except RuntimeError:
        process.kill()
        raise
    return base, process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def describe(base: str, path: str = "/idp") -> dict[str, Any]:
    issuer = f"{base}{path}"
    metadata = httpx.get(f"{issuer}/.well-known/openid-configuration").json()
    return {"base": base, "issuer": issuer, "metadata": metadata}


@pytest.fixture(scope="session")
def idp_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The running provider's key folder (a fresh one: the key is made at start)."""
    return tmp_path_factory.mktemp("idp") / "keys"


@pytest.fixture(scope="session")
def receiver_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A back-channel logout receiver (`receiver.py`), started before the provider."""
    folder = tmp_path_factory.mktemp("receiver")
    base, process = serve(folder, factory="tests.idp.receiver:build", health="/_received")
    yield base
    stop(process)


@pytest.fixture(scope="session")
def idp_server(idp_key_dir: Path, receiver_server: str) -> Iterator[str]:
    base, process = serve(idp_key_dir, env={"IDP_TEST_RECEIVER": receiver_server})
    yield base
    stop(process)


@pytest.fixture
def idp(idp_server: str) -> dict[str, Any]:
    return describe(idp_server)


@pytest.fixture
def default_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider with the default clients (`pingapp`, `pingapp-docs`)."""
    return describe(idp_server, "/default/idp")


@pytest.fixture
def bcl_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider whose clients have back-channel logout URIs."""
    return describe(idp_server, "/bcl/idp")


@pytest.fixture
def clocked_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider with a clock that `POST /_clock?clock=clocked` moves."""
    return describe(idp_server, "/clocked/idp")


@pytest.fixture
def par_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider that requires pushed authorization requests."""
    return describe(idp_server, "/par/idp")


@pytest.fixture
def nonce_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider that requires DPoP nonces (IDP_DPOP_NONCE)."""
    return describe(idp_server, "/nonce/idp")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    stop(process)
