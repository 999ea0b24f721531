"""Failed sign-ins, throttled per user name and per client address (docs/security.md item 33).

Failures are counted in fixed windows of `window` seconds, in the provider's store
(memory, or Redis shared by every worker). Once a name or an address has
`limit` failures in a window, every attempt for it is refused until the end of the
next window: a lock of one to two windows, told to the browser as `Retry-After`.
The check comes before the password is looked at and does not depend on whether
the name exists, so it tells nothing about which users exist.

Memory is bounded whatever a flood sends: names and addresses are counted in
4,096 hash buckets each, per window, and the counters expire after two windows
(at most 16,384 counters).
Two names in one bucket share a throttle, which gives an attacker nothing they
could not do by failing the name itself. The address is the client as
`pingapp.web.clientaddr.client_address` counts it: the socket's peer, or what a trusted
proxy forwarded (TRUSTED_PROXIES, docs/security.md item 51); an IPv6 client by its /64.

The clock is injectable, so tests move time instead of waiting.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from functools import partial

from pingapp.devidp.records import counter_key
from pingapp.devidp.storage import Store
from pingapp.web.clientaddr import counted_as

log = logging.getLogger("pingapp.devidp")

Counter = partial[str]

#: Hex digits of a hash that name a bucket: 16**3 = 4,096 buckets per kind.
BUCKET_DIGITS = 3


def bucket(kind: str, value: str) -> str:
    """The counter's bucket for a name or address (no name or address in the store)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:BUCKET_DIGITS]


class SignInThrottle:
    """Counts failed sign-ins and says how long a name or address must wait."""

    def __init__(
        self,
        store: Store,
        *,
        per_user: int,
        per_address: int,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.per_user = per_user
        self.per_address = per_address
        self.window = window
        self.clock = clock

    def _counters(self, username: str, address: str) -> list[tuple[Counter, int]]:
        """Each counter (a window's index to its store key) and its limit."""
        user = bucket("user", username.casefold())
        addr = bucket("addr", counted_as(address))  # already so from client_address
        return [
            (partial(counter_key, "user", user), self.per_user),
            (partial(counter_key, "addr", addr), self.per_address),
        ]

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until an attempt for this name from this address is allowed; 0: now."""
        now = self.clock()
        current = int(now // self.window)
        wait = 0.0
        for key, limit in self._counters(username, address):
            for index in (current, current - 1):
                if self.store.count(key(index)) >= limit:
                    # locked until the end of the window after the one that hit the limit
                    wait = max(wait, (index + 2) * self.window - now)
                    break
        return math.ceil(wait)

    def failed(self, username: str, address: str) -> None:
        """Count one failure for the name and for the address."""
        index = int(self.clock() // self.window)
        for key, limit in self._counters(username, address):
            if self.store.add(key(index), 2 * self.window) == limit:
                log.warning("sign-in throttled: %s failures for a %s", limit, key.args[0])

    def succeeded(self, username: str) -> None:
        """A right password clears the name's count (not the address's)."""
        index = int(self.clock() // self.window)
        key = self._counters(username, "")[0][0]
        for i in (index, index - 1):
            self.store.delete(key(i))
