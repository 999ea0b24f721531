"""docs/security.md item 51: the client address a throttle counts comes from the socket, or
from `X-Forwarded-For` only when the socket's peer is a trusted proxy.

The running provider's throttle is tested over HTTP in tests/idp/test_signin_throttle.py.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

import pytest

from pingapp.web.clientaddr import client_address, counted_as

PROXIES: list[IPv4Network | IPv6Network] = [
    ip_network("10.0.0.2"),
    ip_network("10.1.0.0/16"),
    ip_network("fd00::/64"),
]


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    headers = [(b"host", b"app.example")]
    headers += [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {
        "type": "http",
        "client": (peer, 51234) if peer is not None else None,
        "headers": headers,
    }


@pytest.mark.parametrize(
    "forwarded",
    [(), ("203.0.113.9",), ("203.0.113.9, 198.51.100.1",), ("10.0.0.2",), ("garbage",)],
)
def test_an_untrusted_peer_is_the_client_whatever_it_forwards(forwarded: tuple[str, ...]) -> None:
    assert client_address(scope("192.0.2.7", *forwarded), PROXIES) == "192.0.2.7"


def test_with_no_trusted_proxies_the_header_is_never_read() -> None:
    assert client_address(scope("10.0.0.2", "203.0.113.9"), []) == "10.0.0.2"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        # nginx appends the peer it saw: the rightmost entry
        (("203.0.113.9",), "203.0.113.9"),
        # what the client wrote on the left is not read
        (("1.2.3.4, 203.0.113.9",), "203.0.113.9"),
        (("1.2.3.4", "203.0.113.9"), "203.0.113.9"),  # two headers read as one list
        # trusted proxies on the way are skipped, from the right
        (("1.2.3.4, 203.0.113.9, 10.1.4.5, 10.0.0.2",), "203.0.113.9"),
        ((" 203.0.113.9 ,10.1.4.5 ",), "203.0.113.9"),
        # every hop trusted: the furthest one
        (("10.1.4.5, 10.0.0.2",), "10.1.4.5"),
        # IPv6 by its /64; IPv4-mapped as IPv4
        (("2001:db8:1:2:3:4:5:6",), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.9",), "203.0.113.9"),
    ],
)
def test_a_trusted_peer_names_the_first_untrusted_hop_from_the_right(
    forwarded: tuple[str, ...], client: str
) -> None:
    assert client_address(scope("10.0.0.2", *forwarded), PROXIES) == client


@pytest.mark.parametrize(
    "forwarded",
    [
        (),
        ("",),
        ("unknown",),
        ("203.0.113.9:4711",),
        ("203.0.113.9, not-an-address",),
        ("203.0.113.9,",),
        ("203.0.113.9, 10.1.4.5, [2001:db8::1]",),
    ],
)
def test_a_trusted_peer_with_no_or_a_malformed_header_is_the_client(
    forwarded: tuple[str, ...],
) -> None:
    assert client_address(scope("10.1.9.9", *forwarded), PROXIES) == "10.1.9.9"


def test_a_malformed_entry_left_of_the_client_is_never_looked_at() -> None:
    forwarded = "<script>, 203.0.113.9, 10.0.0.2"
    assert client_address(scope("10.0.0.2", forwarded), PROXIES) == "203.0.113.9"


def test_trusted_proxies_match_by_version_and_network() -> None:
    assert client_address(scope("fd00::7", "203.0.113.9"), PROXIES) == "203.0.113.9"
    assert client_address(scope("fd00:0:0:1::7", "203.0.113.9"), PROXIES) == "fd00:0:0:1::/64"
    # an IPv4-mapped peer is the IPv4 proxy
    assert client_address(scope("::ffff:10.0.0.2", "203.0.113.9"), PROXIES) == "203.0.113.9"
    assert client_address(scope("10.2.0.1", "203.0.113.9"), PROXIES) == "10.2.0.1"


@pytest.mark.parametrize(
    ("peer", "counted"),
    [
        (None, "unknown"),
        ("", "unknown"),
        ("testclient", "testclient"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ],
)
def test_a_peer_that_is_no_ip_address_is_never_a_proxy(peer: str | None, counted: str) -> None:
    assert client_address(scope(peer, "203.0.113.9"), PROXIES) == counted


@pytest.mark.parametrize(
    ("host", "counted"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2::/64", "2001:db8:1:2::/64"),  # counting twice changes nothing
        ("", "unknown"),
    ],
)
def test_addresses_are_counted_by_host_or_ipv6_64(host: str, counted: str) -> None:
    assert counted_as(host) == counted
