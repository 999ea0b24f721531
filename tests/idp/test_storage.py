"""Codes, sessions and refresh tokens where every backend worker can reach them."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
import redis

from pingapp.devidp.storage import MemoryStore, RedisStore, Store
from tests.idp.conftest import describe, serve, stop
from tests.idp.flow import login


def check_take_is_single_winner(store: Store) -> None:
    store.put("race", {"v": 1}, 60)
    results: list[Any] = []
    barrier = threading.Barrier(16)

    def take() -> None:
        barrier.wait()
        results.append(store.take("race"))

    threads = [threading.Thread(target=take) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r for r in results if r is not None] == [{"v": 1}]


def check_expiry(store: Store) -> None:
    store.put("short", {"v": 1}, 1)
    assert store.get("short") == {"v": 1}
    time.sleep(1.1)
    assert store.get("short") is None
    assert store.take("short") is None


def test_memory_store_take_is_atomic() -> None:
    check_take_is_single_winner(MemoryStore())


def test_memory_store_expires() -> None:
    check_expiry(MemoryStore())


def test_redis_store_take_is_atomic(redis_url: str) -> None:
    check_take_is_single_winner(RedisStore(redis_url))


def test_redis_store_expires(redis_url: str) -> None:
    check_expiry(RedisStore(redis_url))


@pytest.fixture(scope="module")
def two_workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory):
    base, process = serve(
        tmp_path_factory.mktemp("idp-redis") / "keys", workers=2, redis_url=redis_url
    )
    yield base
    stop(process)


def test_two_workers_share_codes_sessions_and_refresh_tokens(two_workers: str) -> None:
    idp = describe(two_workers)
    # several rounds, so requests land on both workers in every order
    for _ in range(4):
        result = login(idp)
        # the session is seen by whichever worker answers next
        assert login(idp, result.browser).token["access_token"]
        refreshed = httpx.post(
            idp["metadata"]["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": result.token["refresh_token"],
                "client_id": "pingapp",
            },
        )
        assert refreshed.status_code == 200
        reuse = httpx.post(
            idp["metadata"]["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": result.token["refresh_token"],
                "client_id": "pingapp",
            },
        )
        assert reuse.json()["error"] == "invalid_grant"


def test_redis_holds_hashes_not_usable_secrets(two_workers: str, redis_url: str) -> None:
    idp = describe(two_workers)
    result = login(idp)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    dump = " ".join(f"{key} {client.get(key)}" for key in client.scan_iter("pingapp:idp:*"))
    assert result.token["refresh_token"] not in dump
    assert result.token["access_token"] not in dump
    assert "pingapp:idp:rt:" in dump


def test_key_file_is_shared_by_the_workers(two_workers: str) -> None:
    idp = describe(two_workers)
    kids = {
        tuple(k["kid"] for k in httpx.get(idp["metadata"]["jwks_uri"]).json()["keys"])
        for _ in range(12)
    }
    assert len(kids) == 1
