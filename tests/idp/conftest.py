"""The provider's test apps (tests/idp/serve.py) under granian for the session,
a back-channel logout receiver, and a Redis server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.idp import describe, serve, stop
from tests.support.redis import start_redis


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


@pytest.fixture
def sealed_idp(idp_server: str) -> dict[str, Any]:
    """The same server's provider whose records `GET /_store` shows."""
    return describe(idp_server, "/sealed/idp")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    redis = start_redis(tmp_path_factory.mktemp("redis"))
    yield redis.url
    redis.stop()
