"""Codes, sessions and refresh tokens where every backend worker can reach them."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import httpx2
import pytest
import redis

from pingapp.devidp.storage import MemoryStore, RedisStore, Store
from tests.idp.flow import Browser, login, parse_page, rp, start, verify
from tests.idp.serve import OTHER_REDIRECT
from tests.support.idp import describe, serve, stop
from tests.support.idp_flow import delivered


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


def check_add_counts_atomically_and_count_creates_nothing(store: Store) -> None:
    store.delete("counter")
    assert store.count("counter") == 0
    assert store.get("counter") is None  # looking did not create it
    barrier = threading.Barrier(8)

    def add() -> None:
        barrier.wait()
        for _ in range(25):
            store.add("counter", 60)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count("counter") == 200
    assert store.add("counter", 60) == 201


def test_memory_store_counters() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    check_add_counts_atomically_and_count_creates_nothing(store)
    store.add("fresh", 60)
    now[0] += 59.9
    assert store.add("fresh", 60) == 2  # adding does not extend the counter's life
    now[0] += 0.1
    assert store.count("fresh") == 0
    assert store.add("fresh", 60) == 1


def test_redis_store_counters(redis_url: str) -> None:
    check_add_counts_atomically_and_count_creates_nothing(RedisStore(redis_url))
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl("pingapp:idp:counter") <= 60  # pyright: ignore[reportOperatorIssue]
    assert not client.exists("pingapp:idp:nothing-here")


def test_memory_store_take_is_atomic() -> None:
    check_take_is_single_winner(MemoryStore())


def test_memory_store_expires() -> None:
    """Expiry on the store's clock, which the test moves instead of waiting."""
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    store.put("short", {"v": 1}, 1)
    now[0] += 0.999
    assert store.get("short") == {"v": 1}
    now[0] += 0.001
    assert store.get("short") is None
    assert store.take("short") is None


def test_redis_store_take_is_atomic(redis_url: str) -> None:
    check_take_is_single_winner(RedisStore(redis_url))


def test_redis_store_expires(redis_url: str) -> None:
    """The TTL is Redis's: it is set on the key, and a key past it reads as absent
    (expired here by setting its expiry in the past, not by waiting)."""
    store = RedisStore(redis_url)
    store.put("short", {"v": 1}, 1)
    assert store.get("short") == {"v": 1}
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.pttl("pingapp:idp:short") <= 1000  # pyright: ignore[reportOperatorIssue]
    client.pexpireat("pingapp:idp:short", 1)
    assert store.get("short") is None
    assert store.take("short") is None


@pytest.fixture(scope="module")
def two_workers(redis_url: str, tmp_path_factory: pytest.TempPathFactory, receiver_server: str):
    base, process = serve(
        tmp_path_factory.mktemp("idp-redis") / "keys",
        workers=2,
        redis_url=redis_url,
        env={"IDP_TEST_RECEIVER": receiver_server},
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
        refreshed = httpx2.post(
            idp["metadata"]["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": result.token["refresh_token"],
                "client_id": "pingapp",
            },
        )
        assert refreshed.status_code == 200
        reuse = httpx2.post(
            idp["metadata"]["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": result.token["refresh_token"],
                "client_id": "pingapp",
            },
        )
        assert reuse.json()["error"] == "invalid_grant"


def test_two_workers_tell_the_clients_of_a_session_whichever_ends_it(
    two_workers: str, receiver_server: str
) -> None:
    """Which clients got tokens in a session is in Redis: the worker that answers the
    logout knows them even if another one issued the codes."""
    idp = describe(two_workers, "/bcl/idp")
    for _ in range(3):
        result = login(idp)
        login(idp, result.browser, client=rp("other", redirect_uri=OTHER_REDIRECT))
        sid = verify(idp, result.token["id_token"], audience="pingapp", typ="JWT")["sid"]
        response = result.browser.http.get(
            idp["metadata"]["end_session_endpoint"],
            params={"id_token_hint": result.token["id_token"]},
        )
        assert response.status_code == 200
        for name in ("pingapp", "other"):
            posts = delivered(receiver_server, name, sid)
            assert len(posts) == 1


def test_redis_holds_hashes_not_usable_secrets(two_workers: str, redis_url: str) -> None:
    idp = describe(two_workers)
    result = login(idp)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    dump = " ".join(f"{key} {client.get(key)}" for key in client.scan_iter("pingapp:idp:*"))
    assert result.token["refresh_token"] not in dump
    assert result.token["access_token"] not in dump
    assert "pingapp:idp:rt:" in dump


def test_redis_holds_a_sign_in_in_progress_as_digests(two_workers: str, redis_url: str) -> None:
    """The transaction id and the browser cookie only as their digests; no form token."""
    idp = describe(two_workers)
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp())
    hidden = parse_page(page.text).hidden
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    dump = " ".join(f"{key} {client.get(key)}" for key in client.scan_iter("pingapp:idp:*"))
    for raw in (hidden["tx"], hidden["csrf"], browser.http.cookies["idp_browser"]):
        assert raw not in dump
    assert f"pingapp:idp:tx:{hashlib.sha256(hidden['tx'].encode()).hexdigest()}" in dump


def test_key_file_is_shared_by_the_workers(two_workers: str) -> None:
    idp = describe(two_workers)
    kids = {
        tuple(k["kid"] for k in httpx2.get(idp["metadata"]["jwks_uri"]).json()["keys"])
        for _ in range(12)
    }
    assert len(kids) == 1


def test_two_workers_share_the_sign_in_throttle(two_workers: str) -> None:
    """Failures counted by one worker lock the name on every worker (Redis)."""
    idp = describe(two_workers, "/throttle/idp")
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp())
    for _ in range(5):
        page = browser.sign_in(page, "dave", "wrong")
        assert page.status_code == 401
    for _ in range(6):  # new connections, so both workers answer
        other = Browser(idp["issuer"])
        page, *_ = start(idp, other, rp())
        response = other.sign_in(page, "dave", "dave")
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) > 0
