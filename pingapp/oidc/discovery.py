"""The provider's metadata: fetched, checked, cached (OpenID Connect Discovery 1.0).

A discovery document is trusted only if it names exactly the configured issuer and
every endpoint in it is `https:` (`http:` only to this machine): docs/security.md item
40. Fetches are single-flight, and a failure is remembered for a cooldown, so a
flood of requests costs one outbound call (item 39).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx2

from pingapp.core.keys import ClientSource, KeyStore
from pingapp.core.singleflight import FAILURE_COOLDOWN, SingleFlight
from pingapp.oidc.errors import LoginError, ProviderUnavailable
from pingapp.urls import is_loopback_host, is_secure_url

#: How long a discovery document is reused before being fetched again.
METADATA_TTL = 600.0


async def get_json(client: httpx2.AsyncClient, url: str, what: str) -> Any:
    """GET `url` as JSON; a clear `ProviderUnavailable` for anything but a 200 with JSON."""
    try:
        response = await client.get(url, headers={"Accept": "application/json"})
    except httpx2.TimeoutException:
        raise ProviderUnavailable(
            "The sign-in provider is too slow",
            f"Its {what} at {url} did not answer in time. Try again in a moment; if "
            "it keeps happening, check that AUTH_ISSUER (or AUTH0_DOMAIN) is right.",
        ) from None
    except httpx2.TransportError:
        raise ProviderUnavailable(
            "The sign-in provider cannot be reached",
            f"Its {what} at {url} did not answer. Check that the provider is up "
            "and that AUTH_ISSUER (or AUTH0_DOMAIN) is right, then try again.",
        ) from None
    if response.status_code != 200:
        raise ProviderUnavailable(
            "The sign-in provider answered with an error",
            f"Its {what} at {url} answered {response.status_code}. "
            "Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        )
    try:
        return response.json()
    except ValueError:
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"Its {what} at {url} is not JSON. Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        ) from None


def _endpoints(document: Mapping[str, Any]) -> list[tuple[str, object]]:
    """The metadata's endpoint fields: `jwks_uri`, every `*_endpoint`, the session
    iframe and the mTLS aliases (RFC 8705), as (name, value)."""
    found: list[tuple[str, object]] = [
        (name, value)
        for name, value in document.items()
        if name in {"jwks_uri", "check_session_iframe"} or name.endswith("_endpoint")
    ]
    aliases = document.get("mtls_endpoint_aliases")
    if isinstance(aliases, Mapping):
        found += [(f"mtls_endpoint_aliases.{name}", value) for name, value in aliases.items()]
    elif aliases is not None:
        found.append(("mtls_endpoint_aliases", aliases))
    return found


def _secure_endpoint(url: str, issuer: str) -> bool:
    """`https:`, loopback `http:`, or `http:` on the issuer's own origin (possible
    only for an issuer the settings allowed as plain http: ALLOW_INSECURE_HTTP)."""
    if is_secure_url(url):
        return True
    ours, theirs = urlsplit(issuer), urlsplit(url)
    return (
        theirs.scheme == "http"
        and ours.scheme == "http"
        and theirs.netloc.lower() == ours.netloc.lower()
        and not theirs.username
        and not is_loopback_host(ours.hostname)  # loopback is already allowed above
    )


def check_metadata(document: object, issuer: str, url: str) -> dict[str, Any]:
    """Trust a discovery document only if it names exactly `issuer` and every
    endpoint in it is `https:` (`http:` only to this machine); else `LoginError`.

    docs/security.md item 40. The login client and the API both use it.
    """
    if not isinstance(document, dict):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"{url} is not a JSON object. Check AUTH_ISSUER (or AUTH0_DOMAIN).",
        )
    if document.get("issuer") != issuer:
        raise LoginError(
            "The issuer does not match",
            f"The provider calls itself {document.get('issuer')!r} but the app is "
            f"configured with {issuer!r}. Set AUTH_ISSUER to exactly the provider's "
            "issuer (a trailing slash counts).",
            code="issuer_mismatch",
        )
    for name, value in _endpoints(document):
        if not isinstance(value, str) or not _secure_endpoint(value, issuer):
            raise LoginError(
                "The sign-in provider's configuration is not safe to use",
                f"{url} gives {name} as {value!r}: endpoints must be https:// "
                "(plain http:// only to this machine). Check the provider's settings.",
                code="insecure_endpoint",
            )
    return document


class Discovery:
    """One issuer's metadata, cached for `ttl` seconds, fetched one at a time.

    After a failure, callers get the same `LoginError` for `failure_cooldown`
    seconds without another outbound call (docs/security.md items 39-40).

    One per issuer in the app (`pingapp.context`): the sign-in and the API share it.
    `client` is an `httpx2.AsyncClient` or a zero-argument function returning one.
    `required` names the fields a usable document must have (beyond the checks of
    `check_metadata`); the one the sign-in uses needs `authorization_endpoint`.
    """

    def __init__(
        self,
        client: ClientSource,
        issuer: str,
        *,
        failure_cooldown: float = FAILURE_COOLDOWN,
        ttl: float = METADATA_TTL,
        required: tuple[str, ...] = ("authorization_endpoint",),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.issuer = issuer
        self.url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self.ttl = ttl
        self.required = required
        self._monotonic = monotonic
        self._flight: SingleFlight[dict[str, Any]] = SingleFlight(
            failure_cooldown=failure_cooldown, monotonic=monotonic
        )
        self._cached: tuple[float, dict[str, Any]] | None = None

    @property
    def failure_cooldown(self) -> float:
        return self._flight.failure_cooldown

    async def get(self) -> dict[str, Any]:
        """The checked discovery document (from the cache while it is fresh)."""
        if self._cached and self._monotonic() - self._cached[0] < self.ttl:
            return self._cached[1]
        return await self._flight.run(self.issuer, self._fetch)

    async def jwks_uri(self) -> str:
        """Where the issuer publishes its keys: a `KeyStore`'s locator, so any failure
        is a `ValueError` with the reason (the store reports it as `KeysUnavailable`)."""
        try:
            uri = (await self.get()).get("jwks_uri")
        except LoginError as problem:
            raise ValueError(problem.detail) from None
        if not isinstance(uri, str):
            msg = f"{self.url} has no jwks_uri"
            raise ValueError(msg)
        return uri

    def key_store(
        self,
        *,
        algorithms: Iterable[str],
        fetch_timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeyStore:
        """The issuer's signing keys (one store per issuer: the sign-in's ID and
        logout tokens and the API's access tokens alike), on this discovery's client
        and failure cooldown."""
        return KeyStore(
            self.jwks_uri,
            client=self._client,
            algorithms=algorithms,
            failure_retry=self.failure_cooldown,
            fetch_timeout=fetch_timeout,
            monotonic=monotonic,
        )

    async def probe(self) -> dict[str, Any]:
        """Fetch the document now, outside the failure cooldown: a success is cached
        as by `get`, a failure is only raised (the start-up check of `pingapp.startup`
        must not turn away the first sign-in after a provider that starts later)."""
        return await self._fetch()

    @property
    def fetches(self) -> int:
        """How many fetches were started (tests and metrics)."""
        return self._flight.fetches

    async def _fetch(self) -> dict[str, Any]:
        client = self._client() if callable(self._client) else self._client
        document = check_metadata(
            await get_json(client, self.url, "discovery document"), self.issuer, self.url
        )
        for name in self.required:
            if not isinstance(document.get(name), str):
                raise ProviderUnavailable(
                    "The sign-in provider's discovery document is incomplete",
                    f"{self.url} has no {name}. Check AUTH_ISSUER.",
                )
        self._cached = (self._monotonic(), document)
        return document
