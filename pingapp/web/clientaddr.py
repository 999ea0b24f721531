"""The client address a throttle counts (docs/security.md item 51).

It is the socket's peer (`scope["client"]`), which no request can choose. Only when
that peer is one of the configured trusted proxies (TRUSTED_PROXIES) does the
request's `X-Forwarded-For` say more: it is read from the right, each entry having
been added by the hop before it, past every address that is itself a trusted proxy,
and the first one that is not is the client. Anything left of that was written by
the client and is never read. A malformed entry on the way stops the walk: the
peer is counted, as when no proxy is trusted.

An IPv6 client is counted by its /64 (one host usually has a whole /64), an
IPv4-mapped IPv6 address as the IPv4 address.

A primitive: it imports nothing of the app.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.types import Scope

__all__ = ["client_address", "counted_as", "parse_address"]

#: The header a trusted proxy appends the address it received the request from to.
FORWARDED_FOR = b"x-forwarded-for"


def parse_address(text: str) -> IPv4Address | IPv6Address | None:
    """The IP address `text` spells (an IPv4-mapped IPv6 address as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def counted_as(host: str) -> str:
    """What counts as one client: the IPv4 address, or the IPv6 /64 network; a host
    that is no IP address (a test client's name) as itself, an empty one as `unknown`."""
    address = parse_address(host)
    if address is None:
        return host or "unknown"
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, 64), strict=False))
    return str(address)


def _trusted(
    address: IPv4Address | IPv6Address, proxies: Sequence[IPv4Network | IPv6Network]
) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def _forwarded_for(scope: Scope) -> list[str]:
    """Every `X-Forwarded-For` entry, in order (several headers read as one list)."""
    values = [
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name == FORWARDED_FOR
    ]
    return [entry.strip() for entry in ",".join(values).split(",")] if values else []


def client_address(scope: Scope, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The client address of an ASGI request, as a throttle counts it (`counted_as`):
    the socket's peer, or, from a trusted proxy, the first address in `X-Forwarded-For`
    from the right that is not itself a trusted proxy."""
    client = scope.get("client")
    peer_host = str(client[0]) if client else ""
    peer = parse_address(peer_host)
    if peer is None or not trusted_proxies or not _trusted(peer, trusted_proxies):
        return counted_as(peer_host)
    chain = _forwarded_for(scope)
    found = peer
    for entry in reversed(chain):
        hop = parse_address(entry)
        if hop is None:
            return counted_as(peer_host)  # malformed: no part of the header is believed
        found = hop
        if not _trusted(hop, trusted_proxies):
            break
    # Every entry a trusted proxy (or none at all): the furthest one is the client.
    return counted_as(str(found))
