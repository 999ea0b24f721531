"""The OIDC client's discovery (single-flight, failure cooldown, only safe
documents: docs/security.md items 39-40) and its logout URL (items 19 and 24).

Discovery is served by a real HTTP server on 127.0.0.1 (tests/api's issuer
stand-in), which counts the calls it gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from pingapp.core.singleflight import FAILURE_COOLDOWN, SingleFlight
from pingapp.oidc import client as oidc
from pingapp.oidc.discovery import Discovery, check_metadata
from pingapp.oidc.errors import LoginError, ProviderUnavailable
from pingapp.oidc.login import end_session_url
from pingapp.settings import Settings
from tests.support.clock import FakeClock
from tests.support.issuers import Issuer, Server, new_key, start_server

CLIENT_ID = "my-app"
RETURN_TO = "http://localhost:3000/"


@pytest.fixture
def provider() -> Iterator[Server]:
    running = start_server(Issuer())
    yield running
    running.stop()


@pytest.fixture
def clock() -> FakeClock:
    """The monotonic clock of the cache and the failure cooldown."""
    return FakeClock()


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


def client_of(http: httpx2.AsyncClient, server: Server, clock: FakeClock) -> oidc.OIDCClient:
    """The OIDC client of an app whose issuer is `server`."""
    url = server.issuer.url
    settings = Settings(auth_issuer=url, auth_client_id=CLIENT_ID)
    return oidc.OIDCClient(http, settings, url, monotonic=clock.monotonic)


async def discover(issuer: str) -> dict:
    async with httpx2.AsyncClient() as client:
        return await Discovery(client, issuer).get()


# -- discovery: what is trusted ------------------------------------------------------


async def test_a_sound_document_is_used_and_cached(
    provider: Server, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    issuer = provider.issuer
    client = client_of(http, provider, clock)
    document = await client.metadata()
    assert document["authorization_endpoint"] == f"{issuer.url}/authorize"
    clock.advance(599)
    await client.metadata()
    assert issuer.discovery_fetches == 1
    clock.advance(2)  # METADATA_TTL later it is fetched again
    await client.metadata()
    assert issuer.discovery_fetches == 2


async def test_a_document_naming_another_issuer_is_refused(provider: Server) -> None:
    issuer = provider.issuer
    issuer.overrides = {"issuer": "https://evil.example.test/"}
    with pytest.raises(LoginError) as caught:
        await discover(issuer.url)
    assert caught.value.code == "issuer_mismatch"
    assert "AUTH_ISSUER" in caught.value.detail


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("authorization_endpoint", "http://idp.example.test/authorize"),
        ("token_endpoint", "http://idp.example.test/token"),
        ("jwks_uri", "http://idp.example.test/jwks"),
        ("userinfo_endpoint", "http://idp.example.test/userinfo"),
        ("end_session_endpoint", "http://idp.example.test/logout"),
        ("revocation_endpoint", "http://idp.example.test/revoke"),
        ("pushed_authorization_request_endpoint", "http://idp.example.test/par"),
        ("token_endpoint", "javascript:alert(1)"),
        ("token_endpoint", None),  # removed: fine (checked where it is used)
        ("userinfo_endpoint", 42),
        ("mtls_endpoint_aliases", {"token_endpoint": "http://mtls.example.test/token"}),
    ],
)
async def test_an_endpoint_that_is_not_https_is_refused(
    provider: Server, field: str, value: object
) -> None:
    issuer = provider.issuer
    issuer.overrides = {field: value}
    if value is None:
        await discover(issuer.url)
        return
    with pytest.raises(LoginError) as caught:
        await discover(issuer.url)
    assert caught.value.code == "insecure_endpoint"
    assert field in caught.value.detail
    assert "https://" in caught.value.detail


async def test_https_and_loopback_http_endpoints_are_fine(provider: Server) -> None:
    issuer = provider.issuer
    issuer.overrides = {
        "end_session_endpoint": "https://idp.example.test/logout",
        "userinfo_endpoint": "http://localhost:8000/idp/userinfo",
        "revocation_endpoint": "http://[::1]:8000/idp/revoke",
    }
    assert (await discover(issuer.url))["end_session_endpoint"].startswith("https://")


def test_an_issuer_allowed_as_plain_http_may_use_its_own_origin_only() -> None:
    # Only possible with ALLOW_INSECURE_HTTP (the settings refuse it otherwise).
    issuer = "http://idp.internal:8080/realm"
    document = {
        "issuer": issuer,
        "authorization_endpoint": "http://idp.internal:8080/realm/authorize",
        "token_endpoint": "https://idp.internal/token",
    }
    assert check_metadata(document, issuer, "url") is document
    for elsewhere in ("http://other.internal:8080/t", "http://idp.internal:8081/t"):
        with pytest.raises(LoginError, match="not safe"):
            check_metadata({**document, "token_endpoint": elsewhere}, issuer, "url")


def test_an_https_issuer_never_allows_http_on_its_own_host() -> None:
    issuer = "https://idp.example.test/"
    document = {"issuer": issuer, "jwks_uri": "http://idp.example.test/jwks"}
    with pytest.raises(LoginError, match="jwks_uri"):
        check_metadata(document, issuer, "url")


# -- discovery: single-flight and failure cooldown -------------------------------------


async def test_with_the_issuer_down_concurrent_logins_cost_one_discovery_call(
    provider: Server, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    issuer = provider.issuer
    issuer.discovery_status = 503
    client = client_of(http, provider, clock)
    outcomes = await asyncio.gather(*(client.metadata() for _ in range(50)), return_exceptions=True)
    assert all(isinstance(outcome, ProviderUnavailable) for outcome in outcomes)
    assert issuer.discovery_fetches == 1
    clock.advance(FAILURE_COOLDOWN - 1)
    with pytest.raises(ProviderUnavailable, match="503"):
        await client.metadata()
    assert issuer.discovery_fetches == 1
    # The cooldown is over and the issuer is back.
    issuer.discovery_status = 200
    clock.advance(2)
    assert (await client.metadata())["issuer"] == issuer.url
    assert issuer.discovery_fetches == 2


async def test_an_unsafe_document_is_remembered_as_a_failure_too(
    provider: Server, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    issuer = provider.issuer
    issuer.overrides = {"token_endpoint": "http://idp.example.test/token"}
    client = client_of(http, provider, clock)
    for _ in range(10):
        with pytest.raises(LoginError):
            await client.metadata()
    assert issuer.discovery_fetches == 1


# -- the provider's keys (for ID tokens) ------------------------------------------------


async def test_with_the_key_set_down_concurrent_callbacks_cost_one_fetch(
    provider: Server, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    issuer = provider.issuer
    issuer.publish(new_key("key-1"))
    issuer.status = 503
    client = client_of(http, provider, clock)
    outcomes = await asyncio.gather(
        *(client.signing_key("key-1", "RS256") for _ in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, ProviderUnavailable) for outcome in outcomes)
    assert issuer.jwks_fetches == 1
    clock.advance(FAILURE_COOLDOWN - 1)
    with pytest.raises(ProviderUnavailable):
        await client.signing_key("key-1", "RS256")
    assert issuer.jwks_fetches == 1
    issuer.status = 200
    clock.advance(2)
    key = await client.signing_key("key-1", "RS256")
    assert key.key_id == "key-1"
    assert issuer.jwks_fetches == 2


async def test_a_key_set_without_usable_keys_is_a_clear_error(
    provider: Server, http: httpx2.AsyncClient, clock: FakeClock
) -> None:
    issuer = provider.issuer
    issuer.jwks = {"keys": [{"kty": "nonsense", "kid": "x"}]}
    with pytest.raises(ProviderUnavailable, match="no usable key"):
        await client_of(http, provider, clock).signing_key("x", "RS256")


# -- SingleFlight on its own -------------------------------------------------------------


async def test_single_flight_shares_one_fetch_and_does_not_keep_successes() -> None:
    flight: SingleFlight[int] = SingleFlight(failure_cooldown=5)
    started = asyncio.Event()
    release = asyncio.Event()

    async def fetch() -> int:
        started.set()
        await release.wait()
        return 7

    waiters = [asyncio.create_task(flight.run("k", fetch)) for _ in range(10)]
    await started.wait()
    waiters[0].cancel()  # one caller goes away: the shared fetch goes on
    release.set()
    assert await asyncio.gather(*waiters[1:]) == [7] * 9
    assert flight.fetches == 1
    release.set()
    assert await flight.run("k", fetch) == 7
    assert flight.fetches == 2


async def test_single_flight_remembers_a_failure_for_the_cooldown_only() -> None:
    clock = FakeClock()
    flight: SingleFlight[int] = SingleFlight(failure_cooldown=5, monotonic=clock.monotonic)

    async def fail() -> int:
        raise ValueError("down")

    for _ in range(3):
        with pytest.raises(ValueError, match="down"):
            await flight.run("k", fail)
    assert flight.fetches == 1
    clock.advance(5)
    with pytest.raises(ValueError):
        await flight.run("k", fail)
    assert flight.fetches == 2
    flight.forget()
    with pytest.raises(ValueError):
        await flight.run("k", fail)
    assert flight.fetches == 3


# -- logout: RP-Initiated Logout, never the ID token in a URL ---------------------------


def params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_logout_names_the_client_and_the_user_never_the_id_token() -> None:
    settings = Settings(auth_issuer="https://idp.example.test/", auth_client_id=CLIENT_ID)
    metadata = {"end_session_endpoint": "https://idp.example.test/logout"}
    url = end_session_url(metadata, settings, logout_hint="auth0|user-1", return_to=RETURN_TO)
    assert url is not None
    assert url.startswith("https://idp.example.test/logout?")
    assert params(url) == {
        "client_id": [CLIENT_ID],
        "logout_hint": ["auth0|user-1"],
        "post_logout_redirect_uri": [RETURN_TO],
    }
    assert "id_token_hint" not in url


def test_logout_without_a_hint_and_with_state() -> None:
    settings = Settings(auth_issuer="https://idp.example.test/", auth_client_id=CLIENT_ID)
    metadata = {"end_session_endpoint": "https://idp.example.test/logout?tenant=x"}
    url = end_session_url(metadata, settings, logout_hint=None, return_to=RETURN_TO, state="s1")
    assert url is not None
    assert params(url) == {
        "tenant": ["x"],
        "client_id": [CLIENT_ID],
        "post_logout_redirect_uri": [RETURN_TO],
        "state": ["s1"],
    }


def test_auth0_logout_without_end_session_endpoint() -> None:
    settings = Settings(auth0_domain="tenant.auth0.test", auth_client_id=CLIENT_ID)
    url = end_session_url({}, settings, logout_hint="auth0|user-1", return_to=RETURN_TO)
    assert url is not None
    assert url.startswith("https://tenant.auth0.test/v2/logout?")
    assert params(url) == {"client_id": [CLIENT_ID], "returnTo": [RETURN_TO]}


def test_no_logout_url_for_a_provider_without_end_session() -> None:
    settings = Settings(auth_issuer="https://idp.example.test/")
    assert end_session_url({}, settings, logout_hint="u", return_to=RETURN_TO) is None


def test_logout_url_takes_no_id_token() -> None:
    settings = Settings(auth_issuer="https://idp.example.test/")
    metadata = {"end_session_endpoint": "https://idp.example.test/logout"}
    with pytest.raises(TypeError):
        end_session_url(metadata, settings, id_token="a.b.c", return_to=RETURN_TO)  # type: ignore[call-arg]


async def test_the_start_up_probe_leaves_no_failure_cooldown(clock: FakeClock) -> None:
    """The start-up check (`pingapp.startup`) probes the provider before it may be up:
    its failure must not turn away the first sign-in once the provider answers,
    whereas a sign-in's own failure is remembered for the cooldown."""
    issuer = "http://127.0.0.1:9/"
    up = False
    calls: list[str] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.url.path)
        if not up:
            return httpx2.Response(503)
        return httpx2.Response(
            200, json={"issuer": issuer, "authorization_endpoint": issuer + "authorize"}
        )

    async with httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client:
        discovery = Discovery(client, issuer, monotonic=clock.monotonic)
        with pytest.raises(ProviderUnavailable):
            await discovery.probe()
        up = True
        document = await discovery.get()  # at once: no cooldown from the probe
        assert document["issuer"] == issuer
        assert len(calls) == 2

        down = Discovery(client, issuer, monotonic=clock.monotonic)
        up = False
        with pytest.raises(ProviderUnavailable):
            await down.get()
        up = True
        with pytest.raises(ProviderUnavailable):
            await down.get()  # within the cooldown: the same answer, no call
        assert len(calls) == 3
