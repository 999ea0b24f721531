"""docs/security.md item 33: failed sign-ins are throttled per user name and per client
address, with HTTP 429 and `Retry-After`, the same for known and unknown names.

Driven over HTTP against `/throttle/idp`, whose clock the tests move (`/_clock`):
nothing waits for a window to pass. A second client address is 127.0.0.2 (the
server still listens on 127.0.0.1 only).

docs/security.md item 51, against `/proxied/idp`, which trusts 127.0.0.2 and 127.0.0.3 as
reverse proxies: a client's `X-Forwarded-For` moves no count, a trusted proxy's names
the client that is counted.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from pingapp.devidp.storage import MemoryStore
from pingapp.devidp.throttle import BUCKET_DIGITS, SignInThrottle, bucket
from tests.idp.flow import Browser, callback_params, form_error, parse_page, rp, start
from tests.support.idp import describe

WINDOW = 300  # IdpSettings.signin_window's default
PER_USER = 5
PER_ADDRESS = 20


@pytest.fixture
def tidp(idp_server: str) -> Iterator[dict[str, Any]]:
    """The throttled provider; afterwards its clock moves past every lock."""
    yield describe(idp_server, "/throttle/idp")
    move_clock(idp_server, 3 * WINDOW)


@pytest.fixture
def proxied(idp_server: str) -> Iterator[dict[str, Any]]:
    """The provider behind trusted proxies; afterwards its clock moves past every lock."""
    yield describe(idp_server, "/proxied/idp")
    move_clock(idp_server, 3 * WINDOW, "proxied")


def move_clock(base: str, seconds: float, clock: str = "throttle") -> None:
    httpx2.post(f"{base}/_clock", params={"seconds": seconds, "clock": clock}).raise_for_status()


def browser_from(
    idp: dict[str, Any], address: str = "127.0.0.1", forwarded_for: str | None = None
) -> Browser:
    """A browser whose requests come from `address`, each with `X-Forwarded-For` if given."""
    transport = httpx2.HTTPTransport(local_address=address)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return Browser(idp["issuer"], httpx2.Client(timeout=10, transport=transport, headers=headers))


def sign_in_page(idp: dict[str, Any], browser: Browser) -> httpx2.Response:
    page, *_ = start(idp, browser, rp())
    assert "signin" in parse_page(page.text).ids
    return page


def fail(browser: Browser, page: httpx2.Response, user: str, times: int) -> httpx2.Response:
    for _ in range(times):
        page = browser.sign_in(page, user, "wrong-password")
        assert page.status_code == 401, page.status_code
    return page


def refused(response: httpx2.Response) -> int:
    """The `Retry-After` of a throttled answer (asserting it is one)."""
    assert response.status_code == 429
    assert form_error(response).startswith("Too many failed sign-ins. Try again in ")
    assert "idp_session" not in response.cookies
    wait = int(response.headers["retry-after"])
    assert 0 < wait <= 2 * WINDOW
    return wait


def test_a_name_is_locked_after_five_failures_even_with_the_right_password(
    tidp: dict[str, Any],
) -> None:
    browser = browser_from(tidp)
    page = fail(browser, sign_in_page(tidp, browser), "alice", PER_USER)
    wait = refused(browser.sign_in(page, "alice", "alice"))
    # still locked just before the lock ends
    move_clock(tidp["base"], wait - 2)
    refused(browser.sign_in(page, "alice", "alice"))
    # and open again once it has
    move_clock(tidp["base"], 2)
    back = browser.sign_in(page, "alice", "alice")
    assert back.status_code in (200, 302)
    assert "idp_session" in browser.http.cookies


def test_the_lock_on_a_name_holds_from_another_address(tidp: dict[str, Any]) -> None:
    first = browser_from(tidp, "127.0.0.1")
    fail(first, sign_in_page(tidp, first), "bob", PER_USER)
    other = browser_from(tidp, "127.0.0.2")
    refused(other.sign_in(sign_in_page(tidp, other), "bob", "bob"))
    # another name from the first address is not locked (the address has 5 of 20)
    back = first.sign_in(sign_in_page(tidp, first), "carol", "carol")
    assert back.status_code in (200, 302)


def test_an_unknown_name_is_throttled_exactly_like_a_known_one(tidp: dict[str, Any]) -> None:
    answers = []
    for user in ("dave", "nobody-at-all"):
        browser = browser_from(tidp)
        page = fail(browser, sign_in_page(tidp, browser), user, PER_USER)
        response = browser.sign_in(page, user, "wrong-password")
        answers.append((response.status_code, form_error(response), refused(response)))
    assert answers[0] == answers[1]


def test_an_address_is_locked_after_twenty_failures_over_many_names(
    tidp: dict[str, Any],
) -> None:
    """Password spraying: one password tried on many names from one address."""
    browser = browser_from(tidp, "127.0.0.1")
    page = sign_in_page(tidp, browser)
    for i in range(PER_ADDRESS):
        page = fail(browser, page, f"spray-{i}", 1)
    refused(browser.sign_in(page, "alice", "alice"))
    # the names themselves are not locked: another address signs in
    other = browser_from(tidp, "127.0.0.2")
    back = other.sign_in(sign_in_page(tidp, other), "alice", "alice")
    assert back.status_code in (200, 302)


def test_a_right_password_clears_the_names_count(tidp: dict[str, Any]) -> None:
    for address in ("127.0.0.2", "127.0.0.3"):  # 4 + 4 failures: 8 without the clearing
        browser = browser_from(tidp, address)
        page = fail(browser, sign_in_page(tidp, browser), "carol", PER_USER - 1)
        back = browser.sign_in(page, "carol", "carol")
        assert back.status_code in (200, 302)
        assert "idp_session" in browser.http.cookies


def test_the_unthrottled_flow_still_signs_in(tidp: dict[str, Any]) -> None:
    browser = browser_from(tidp)
    page = fail(browser, sign_in_page(tidp, browser), "alice", 1)
    back = browser.sign_in(page, "alice", "alice")
    if back.status_code == 200:
        back = browser.consent(back)
    assert "code" in callback_params(back)


# -- the throttle object: bounded memory, addresses ------------------------------------------


def test_a_flood_of_random_names_and_addresses_uses_bounded_memory() -> None:
    store = MemoryStore()
    now = [0.0]
    throttle = SignInThrottle(store, per_user=5, per_address=20, window=300, clock=lambda: now[0])
    rng = random.Random(7)
    for i in range(40_000):
        name = "".join(rng.choices(string.ascii_letters, k=12))
        address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        throttle.failed(name, address)
        now[0] += 0.001 * (i % 2)
    # two kinds of counter, 16**BUCKET_DIGITS buckets each, in one window here
    assert len(store) <= 2 * 16**BUCKET_DIGITS < 40_000


def test_counters_hold_no_names_or_addresses() -> None:
    store = MemoryStore()
    throttle = SignInThrottle(store, per_user=5, per_address=20, window=300, clock=lambda: 0.0)
    throttle.failed("alice", "192.0.2.7")
    keys = " ".join(store._items)  # pyright: ignore[reportPrivateUsage]
    assert "alice" not in keys
    assert "192.0.2.7" not in keys
    assert bucket("user", "alice") in keys


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    store = MemoryStore()
    throttle = SignInThrottle(store, per_user=5, per_address=2, window=300, clock=lambda: 0.0)
    throttle.failed("a", "2001:db8:1:2::1")
    throttle.failed("b", "2001:db8:1:2:ffff::9")
    assert throttle.retry_after("c", "2001:db8:1:2::77") > 0
    assert throttle.retry_after("c", "2001:db8:1:3::1") == 0


# -- docs/security.md item 51: X-Forwarded-For only from a trusted proxy ---------------------------


def spray(idp: dict[str, Any], make: Any, prefix: str) -> None:
    """PER_ADDRESS failures, each on a new name and sign-in page, from `make()`'s browser."""
    for i in range(PER_ADDRESS):
        browser = make(i)
        fail(browser, sign_in_page(idp, browser), f"{prefix}-{i}", 1)


def test_a_clients_own_forwarded_for_moves_no_count(proxied: dict[str, Any]) -> None:
    """From an untrusted peer, a new X-Forwarded-For on every attempt still counts the peer."""
    spray(proxied, lambda i: browser_from(proxied, "127.0.0.1", f"198.51.100.{i}"), "own")
    fresh = browser_from(proxied, "127.0.0.1", "198.51.100.250")
    refused(fresh.sign_in(sign_in_page(proxied, fresh), "alice", "alice"))
    # the header named no one: those addresses are not locked behind a trusted proxy
    behind = browser_from(proxied, "127.0.0.2", "198.51.100.3")
    back = behind.sign_in(sign_in_page(proxied, behind), "alice", "alice")
    assert back.status_code in (200, 302)


def test_a_trusted_proxy_names_the_client_that_is_counted(proxied: dict[str, Any]) -> None:
    # One client behind two proxies (127.0.0.3 in front of 127.0.0.2), and what it
    # wrote itself on the left of the header, different every time.
    spray(
        proxied,
        lambda i: browser_from(proxied, "127.0.0.3", f"10.9.9.{i}, 203.0.113.9, 127.0.0.2"),
        "proxied",
    )
    again = browser_from(proxied, "127.0.0.2", "203.0.113.9")
    refused(again.sign_in(sign_in_page(proxied, again), "alice", "alice"))
    # another client behind the same proxy, and the proxy itself, are not locked
    for forwarded in ("203.0.113.10", None):
        other = browser_from(proxied, "127.0.0.2", forwarded)
        back = other.sign_in(sign_in_page(proxied, other), "alice", "alice")
        assert back.status_code in (200, 302), forwarded
