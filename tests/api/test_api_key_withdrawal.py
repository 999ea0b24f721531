"""A cached verification never outlives its key nor the key set's max age
(docs/security.md item 37), and the optional ceiling on a token's lifetime.

The API is served over real HTTP (granian's embedded server on 127.0.0.1), the
issuer too; time moves only on the fake clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from pingapp.api.jws import TokenRefused
from pingapp.api.verifier import TokenVerifier
from tests.support.api import bearer, challenge, make_api, make_verifier, serve
from tests.support.clock import FakeClock
from tests.support.issuers import Issuer, Key, Minter, Server

TEN_YEARS = 10 * 365 * 86_400


@pytest.fixture
async def api(verifier: TokenVerifier) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the API over real HTTP."""
    async with serve(make_api(verifier)) as url, httpx2.AsyncClient(base_url=url) as client:
        yield client


async def settled(verifier: TokenVerifier) -> None:
    """Wait for the key refresh the last request started, if any."""
    await verifier.keys.settled()


async def assert_refused(api: httpx2.AsyncClient, token: str) -> None:
    response = await api.get("/private", headers=bearer(token))
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"


async def test_a_cached_token_dies_with_its_key_once_the_key_set_is_past_its_max_age(
    api: httpx2.AsyncClient,
    verifier: TokenVerifier,
    issuer: Issuer,
    clock: FakeClock,
    mint: Minter,
    keys: list[Key],
) -> None:
    token = mint.token(exp=int(clock.time()) + TEN_YEARS)
    assert (await api.get("/private", headers=bearer(token))).status_code == 200
    assert (await api.get("/private", headers=bearer(token))).status_code == 200  # cached
    assert issuer.jwks_fetches == 1
    issuer.publish(keys[1])  # key-1 withdrawn
    clock.advance(verifier.keys.max_age + 1)
    # The key set is too old to vouch for the cached token: this request verifies
    # it in full with the keys held (still key-1) and starts the refetch...
    await api.get("/private", headers=bearer(token))
    await settled(verifier)
    assert issuer.jwks_fetches == 2
    # ...which no longer has key-1: the token is refused from now on.
    await assert_refused(api, token)
    clock.advance(30 * 86_400)
    await assert_refused(api, token)


async def test_a_cached_token_dies_with_its_key_when_an_unknown_kid_refetches_the_keys(
    api: httpx2.AsyncClient,
    verifier: TokenVerifier,
    issuer: Issuer,
    clock: FakeClock,
    mint: Minter,
    keys: list[Key],
) -> None:
    token = mint.token(exp=int(clock.time()) + TEN_YEARS)
    assert (await api.get("/private", headers=bearer(token))).status_code == 200
    issuer.publish(keys[1])  # rotation: key-1 withdrawn, key-2 in
    clock.advance(verifier.keys.cooldown + 1)
    rotated = mint.token(key=keys[1])
    assert (await api.get("/private", headers=bearer(rotated))).status_code == 200
    assert issuer.jwks_fetches == 2
    await assert_refused(api, token)


async def test_a_key_replaced_under_the_same_kid_ends_the_old_tokens(
    api: httpx2.AsyncClient,
    verifier: TokenVerifier,
    issuer: Issuer,
    clock: FakeClock,
    mint: Minter,
    keys: list[Key],
) -> None:
    token = mint.token()
    assert (await api.get("/private", headers=bearer(token))).status_code == 200
    impostor = Key("key-1", keys[2].private)  # same kid, other key material
    issuer.publish(impostor)
    clock.advance(verifier.keys.max_age + 1)
    await api.get("/private", headers=bearer(token))
    await settled(verifier)
    await assert_refused(api, token)
    assert (await api.get("/private", headers=bearer(mint.token(key=impostor)))).status_code == 200


async def test_a_cached_token_is_not_served_past_the_max_age_even_if_the_refetch_fails(
    verifier: TokenVerifier, server: Server, clock: FakeClock, mint: Minter
) -> None:
    token = mint.token(exp=int(clock.time()) + TEN_YEARS)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # from the cache
    server.stop()
    clock.advance(verifier.keys.max_age + 1)
    again = await verifier.verify(token)  # verified in full with the keys held...
    assert again is not first
    await settled(verifier)  # ...the refetch fails...
    assert await verifier.verify(token) is not again  # ...so nothing is served from the cache
    assert token not in verifier._cache


async def test_an_unchanged_key_keeps_its_tokens_cached_across_a_refetch(
    verifier: TokenVerifier, issuer: Issuer, clock: FakeClock, mint: Minter
) -> None:
    token = mint.token(exp=int(clock.time()) + 3 * 3600)
    first = await verifier.verify(token)
    clock.advance(verifier.keys.max_age + 1)
    await verifier.verify(mint.token(exp=int(clock.time()) + 3600))  # starts the refetch
    await settled(verifier)
    assert issuer.jwks_fetches == 2
    assert await verifier.verify(token) is first


async def test_a_verification_that_raced_a_withdrawal_is_not_trusted_from_the_cache(
    verifier: TokenVerifier, issuer: Issuer, clock: FakeClock, mint: Minter, keys: list[Key]
) -> None:
    # The entry names the key object that verified it; once the key set no longer
    # holds that object, the entry counts for nothing, however it got there.
    token = mint.token()
    await verifier.verify(token)
    entry = verifier._cache[token]
    issuer.publish(keys[1])
    clock.advance(verifier.keys.cooldown + 1)
    await verifier.verify(mint.token(key=keys[1]))  # refetch: key-1 gone
    verifier._cache[token] = entry  # as if a verification finished just after it
    with pytest.raises(TokenRefused, match="not signed by a key"):
        await verifier.verify(token)


# -- the lifetime ceiling (AUTH_MAX_TOKEN_LIFETIME) ----------------------------------------


async def test_without_a_ceiling_a_long_lived_token_is_accepted(
    api: httpx2.AsyncClient, clock: FakeClock, mint: Minter
) -> None:
    token = mint.token(exp=int(clock.time()) + TEN_YEARS)
    assert (await api.get("/private", headers=bearer(token))).status_code == 200


async def test_a_token_living_longer_than_the_ceiling_is_refused(
    issuer: Issuer, clock: FakeClock, mint: Minter
) -> None:
    verifier = make_verifier(issuer, clock, max_token_lifetime=3600)
    now = int(clock.time())
    async with serve(make_api(verifier)) as url, httpx2.AsyncClient(base_url=url) as api:
        assert (await api.get("/private", headers=bearer(mint.token(exp=now + 3600)))).is_success
        await assert_refused(api, mint.token(exp=now + TEN_YEARS))
        await assert_refused(api, mint.token(iat=now - 60, exp=now + 3560 + 1))
        # Without iat, what is left of its life is measured.
        await assert_refused(api, mint.token(iat=None, exp=now + 3601))
        no_iat = mint.token(iat=None, exp=now + 600)
        assert (await api.get("/private", headers=bearer(no_iat))).is_success
        response = await api.get("/private", headers=bearer(mint.token(exp=now + 7200)))
        assert "longer" in challenge(response)["error_description"]
    await verifier.aclose()


def test_the_ceiling_cannot_be_negative(issuer: Issuer) -> None:
    with pytest.raises(ValueError, match="max_token_lifetime"):
        TokenVerifier(issuer=issuer.url, audience="a", max_token_lifetime=-1)
