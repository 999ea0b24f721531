"""The signing keys of one issuer: its JWKS, fetched and cached (`KeyStore`).

One store per `jwks_uri` serves every token that issuer signs: the API's access
tokens and the sign-in's ID and logout tokens alike, on the caller's HTTP client
(in the app, the shared one). A request never becomes a flood of outbound calls
(docs/security.md items 3 and 39), and a key the issuer withdrew stops working once
the keys held are older than `max_age`. Only asymmetric signing keys are kept;
`pingapp.core.jwks` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import httpx2
from jwt import PyJWK

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS, KeyId, asymmetric_only, signing_keys
from pingapp.core.singleflight import FAILURE_COOLDOWN

log = logging.getLogger(__name__)

#: What a failed fetch or an unusable document raises.
_FETCH_ERRORS = (httpx2.HTTPError, httpx2.InvalidURL, TimeoutError, ValueError, KeyError, TypeError)

#: The HTTP client to fetch with: a client, or a function giving the shared one.
ClientSource = httpx2.AsyncClient | Callable[[], httpx2.AsyncClient]
#: Where the key set is: a URL, or a coroutine function finding it (discovery).
JwksLocation = str | Callable[[], Awaitable[str]]


class KeyStoreError(Exception):
    """No key for a token; the text names the problem, never a token."""


class UnknownKey(KeyStoreError):
    """The issuer's current key set has no key for this `kid` and algorithm."""


class AmbiguousKey(UnknownKey):
    """The token names no `kid` and the issuer has several keys for its algorithm."""


class KeysUnavailable(KeyStoreError):
    """No key for it, and the key set could not be fetched (or not in time).

    `reason` says why the last fetch failed (for logs and operators: it may
    name the key set's URL)."""

    def __init__(self, reason: str) -> None:
        super().__init__("the issuer's keys are not available")
        self.reason = reason


class KeyStore:
    """The keys of one issuer's `jwks_uri`, for verifying its tokens.

    An unknown `kid` starts at most one refetch at a time, and after it none for
    `cooldown` seconds (`failure_retry` seconds after a failed fetch); a request
    waits at most `fetch_timeout` seconds for keys; keys older than `max_age`
    are refetched in the background while requests go on with them.

    - `await key(kid, alg)` -> `jwt.PyJWK`, or `UnknownKey` (`AmbiguousKey` when
      `kid` is None and several keys fit) or `KeysUnavailable`;
    - `holds(kid, alg, key)`: whether `key` (given by `key()` earlier) is still
      the one held for that kid and the key set is younger than `max_age`
      (`fresh`); a cache of verified tokens serves an entry only while this is
      true; `current(kid, alg)` is the key held now, however old;
    - `changes`: counts key-set replacements: when it moves, a cache drops the
      entries whose key is no longer `current`;
    - `fetches`: key-set fetches started; `refreshing` / `await settled()`: a
      refetch is running / wait for it (tests, metrics).

    `jwks_uri` is the URL, or a coroutine function that finds it (discovery),
    called inside the same `fetch_timeout` deadline as the fetch. `client` is an
    `httpx2.AsyncClient` or a zero-argument function returning one (such as
    the verifier's own); the store never closes it. `algorithms`
    limits the keys kept (default: every asymmetric algorithm); `none` and
    `HS*` are refused. `monotonic` is the clock (injected by tests).

    A key whose JWK did not change across a refetch keeps its `PyJWK` object
    (compared by a fingerprint of the JWK), so `holds()` stays true for it; a
    withdrawn key, or another key under the same kid, makes it false.
    """

    def __init__(
        self,
        jwks_uri: JwksLocation,
        *,
        client: ClientSource,
        algorithms: Iterable[str] = ASYMMETRIC_ALGORITHMS,
        cooldown: float = 30.0,
        max_age: float = 600.0,
        failure_retry: float = FAILURE_COOLDOWN,
        fetch_timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if cooldown < 30:
            msg = "the key set's cooldown must be at least 30 seconds"
            raise ValueError(msg)
        if failure_retry < 0 or fetch_timeout <= 0 or max_age <= 0:
            msg = "failure_retry must not be negative; fetch_timeout and max_age must be positive"
            raise ValueError(msg)
        self.algorithms = asymmetric_only(algorithms)
        self.cooldown = cooldown
        self.max_age = max_age
        self.failure_retry = failure_retry
        self.fetch_timeout = fetch_timeout
        self._jwks_uri = jwks_uri
        #: For logs: the key set's URL once known.
        self._name = jwks_uri if isinstance(jwks_uri, str) else "not discovered yet"
        self._client = client
        self._monotonic = monotonic

        self._keys: dict[KeyId, PyJWK] = {}
        self._fingerprints: dict[KeyId, str] = {}
        self._kids: frozenset[str | None] = frozenset()
        #: For tokens without a kid: the one key of each algorithm, if there is just one.
        self._sole: dict[str, PyJWK] = {}
        self._task: asyncio.Task[None] | None = None
        self._next_fetch = 0.0
        self._stale_at = 0.0
        #: Why the last fetch failed (None after a success).
        self._failure: str | None = None
        self.fetches = 0
        self.changes = 0

    # -- what callers use ------------------------------------------------------

    async def key(self, kid: str | None, alg: str) -> PyJWK:
        """The issuer's key for `kid` and `alg` (see the class docstring)."""
        if self._kids:
            self._refresh_if_stale()
        key = self._keys.get((kid, alg))
        if key is None and kid is None:
            # No kid: fine while the issuer has a single key for this algorithm.
            if not self._kids:
                await self._await_refresh()
            key = self.current(None, alg)
        elif key is None and kid not in self._kids:
            await self._await_refresh()
            key = self._keys.get((kid, alg))
        if key is None:
            raise self._missing(kid, alg)
        return key

    def holds(self, kid: str | None, alg: str, key: PyJWK) -> bool:
        """Whether `key` is still held for (`kid`, `alg`) by a key set younger than `max_age`."""
        return self.fresh and self.current(kid, alg) is key

    def current(self, kid: str | None, alg: str) -> PyJWK | None:
        """The key held now for (`kid`, `alg`), however old; no fetch."""
        key = self._keys.get((kid, alg))
        return self._sole.get(alg) if key is None and kid is None else key

    @property
    def fresh(self) -> bool:
        """Whether the key set held was fetched less than `max_age` ago."""
        return self._monotonic() < self._stale_at

    @property
    def refreshing(self) -> bool:
        """Whether a refetch is running."""
        return self._task is not None

    async def settled(self) -> None:
        """Wait for the running refetch, if any (it never raises)."""
        task = self._running()
        if task is not None:
            await asyncio.shield(task)

    def _missing(self, kid: str | None, alg: str) -> KeyStoreError:
        if self._failure is not None or self._task is not None:
            return KeysUnavailable(self._failure or "the key set did not arrive in time")
        if kid is None and any(alg == held_alg for _, held_alg in self._keys):
            return AmbiguousKey("the token names no key and the issuer has several")
        return UnknownKey("the token is not signed by a key of the issuer")

    # -- fetching --------------------------------------------------------------

    def _http(self) -> httpx2.AsyncClient:
        return self._client() if callable(self._client) else self._client

    async def _fetch(self) -> dict[KeyId, tuple[PyJWK, str]]:
        # One deadline for the whole refresh: httpx's timeouts are per read, and
        # a server sending a byte now and then would never trip them.
        async with asyncio.timeout(self.fetch_timeout):
            url = self._jwks_uri if isinstance(self._jwks_uri, str) else await self._jwks_uri()
            self._name = url
            self.fetches += 1
            response = await self._http().get(url, timeout=self.fetch_timeout)
            response.raise_for_status()
            document = response.json()
        keys = signing_keys(document, self.algorithms)
        if not keys:
            msg = "the JWKS has no usable signing key"
            raise ValueError(msg)
        return keys

    def _install(self, keys: dict[KeyId, tuple[PyJWK, str]]) -> None:
        # A key whose JWK did not change keeps its object, so what it verified
        # stays trusted (`holds`); a withdrawn or replaced key's does not.
        self._keys = {
            ident: self._keys[ident]
            if ident in self._keys and self._fingerprints.get(ident) == fingerprint
            else key
            for ident, (key, fingerprint) in keys.items()
        }
        self._fingerprints = {ident: fingerprint for ident, (_, fingerprint) in keys.items()}
        self._kids = frozenset(kid for kid, _ in keys)
        by_alg: dict[str, list[PyJWK]] = {}
        for (_, alg), key in self._keys.items():
            by_alg.setdefault(alg, []).append(key)
        self._sole = {alg: found[0] for alg, found in by_alg.items() if len(found) == 1}
        self._stale_at = self._monotonic() + self.max_age
        self.changes += 1

    async def _refresh(self) -> None:
        ok = False
        try:
            self._install(await self._fetch())
            self._failure = None
            ok = True
        except Exception as error:
            # Keep the keys we have and say why (no token ever reaches this code).
            # An unexpected error (a bug) is logged with its traceback; either way
            # the requests waiting for keys get an answer, not a 500.
            self._failure = _describe(error)
            unexpected = not isinstance(error, _FETCH_ERRORS)
            log.warning(
                "JWKS refresh (%s) failed: %s", self._name, self._failure, exc_info=unexpected
            )
        finally:
            delay = self.cooldown if ok else self.failure_retry
            self._next_fetch = self._monotonic() + delay
            if self._task is asyncio.current_task():
                self._task = None

    def _running(self) -> asyncio.Task[None] | None:
        """The refetch running on this event loop (one left by an ended loop is dropped)."""
        if self._task is not None and self._task.get_loop() is not asyncio.get_running_loop():
            self._task = None
        return self._task

    async def _await_refresh(self) -> None:
        """Start a refetch unless one runs or the cooldown holds; wait a bounded time."""
        task = self._running()
        if task is None:
            if self._monotonic() < self._next_fetch:
                return
            task = self._task = asyncio.create_task(self._refresh())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.fetch_timeout)

    def _refresh_if_stale(self) -> None:
        """Refetch old keys in the background; the request does not wait."""
        if self._running() is None and self._monotonic() >= max(self._stale_at, self._next_fetch):
            self._task = asyncio.create_task(self._refresh())


def _describe(error: Exception) -> str:
    """One line naming an error: its type and the first line of its text."""
    text = str(error).partition("\n")[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
