"""Fetching and caching keys and tokens (docs/security.md item 3, and the token cache)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from pingapp.api.jws import TokenRefused
from pingapp.api.verifier import TokenVerifier
from pingapp.core.keys import KeyStore
from tests.support.api import bearer, make_api, make_verifier
from tests.support.clock import FakeClock
from tests.support.issuers import AUDIENCE, Issuer, Key, Minter, Server


def client_for(verifier: TokenVerifier) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=make_api(verifier))
    return httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def test_a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch(
    mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    # The refetch shares the event loop with the 1,000 requests: a fetch_timeout
    # long enough for it to finish however slow the machine is.
    verifier = make_verifier(issuer, clock, fetch_timeout=120)
    async with client_for(verifier) as client:
        good = mint.token()
        assert (await client.get("/private", headers=bearer(good))).status_code == 200
        assert issuer.jwks_fetches == 1
        clock.advance(31)  # the cooldown after that first fetch is over

        # The attacker's tokens: signed, but with 1,000 random kids, sent concurrently.
        flood = [mint.token(key=keys[2], headers={"kid": uuid.uuid4().hex}) for _ in range(1000)]
        answers = await asyncio.gather(*(client.get("/private", headers=bearer(t)) for t in flood))
        assert {answer.status_code for answer in answers} == {401}
        assert issuer.jwks_fetches == 2  # one refetch for the whole flood
        # Known keys stayed: the real token still works, without any fetch.
        assert (await client.get("/private", headers=bearer(mint.token()))).status_code == 200
        assert issuer.jwks_fetches == 2
    await verifier.aclose()


async def test_no_refetch_during_the_cooldown(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    assert verifier.keys.cooldown >= 30
    await verifier.verify(mint.token())
    for _ in range(50):
        with pytest.raises(TokenRefused):
            await verifier.verify(mint.token(key=keys[1]))
    assert issuer.jwks_fetches == 1
    clock.advance(29)
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=keys[1]))
    assert issuer.jwks_fetches == 1


def test_the_cooldown_cannot_be_shorter_than_30_seconds(issuer: Issuer) -> None:
    with pytest.raises(ValueError, match="30"):
        TokenVerifier(issuer=issuer.url, audience=AUDIENCE, jwks_cooldown=5)


async def test_a_rotated_key_is_picked_up_and_a_withdrawn_key_is_dropped(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    old = mint.token()
    await verifier.verify(old)  # cached now
    issuer.publish(keys[1])  # rotation: key-1 withdrawn, key-2 in
    clock.advance(31)
    new = mint.token(key=keys[1])
    assert (await verifier.verify(new)).subject == "auth0|user-1"
    assert issuer.jwks_fetches == 2
    # The old key is gone from the JWKS: its token is refused, cached or not.
    with pytest.raises(TokenRefused, match="not signed by a key"):
        await verifier.verify(old)
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token())


async def test_both_keys_work_while_the_jwks_publishes_both(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, keys: list[Key]
) -> None:
    issuer.publish(keys[0], keys[1])
    await verifier.verify(mint.token())
    await verifier.verify(mint.token(key=keys[1]))
    assert issuer.jwks_fetches == 1


async def test_when_the_jwks_server_is_down_cached_keys_keep_working(
    server: Server,
    verifier: TokenVerifier,
    mint: Minter,
    clock: FakeClock,
    keys: list[Key],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await verifier.verify(mint.token())
    server.stop()
    clock.advance(60)
    # A new token (not in the token cache) with the known key: fine.
    assert (await verifier.verify(mint.token(jti="after-the-outage"))).scopes
    # An unknown key: one failed fetch, a quick 401 and the keys we had are kept.
    fetches = verifier.keys.fetches
    with caplog.at_level(logging.WARNING, logger="pingapp.core.keys"), pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=keys[1]))
    assert verifier.keys.fetches == fetches + 1  # one fetch...
    # ...refused at once, not waited out to fetch_timeout (which would log a TimeoutError).
    failures = [
        record.getMessage() for record in caplog.records if record.name == "pingapp.core.keys"
    ]
    assert len(failures) == 1
    assert "ConnectError" in failures[0]
    assert (await verifier.verify(mint.token(jti="still-fine"))).scopes


async def test_a_slow_jwks_server_fails_fast_with_401_not_a_hang(
    issuer: Issuer, clock: FakeClock, mint: Minter, keys: list[Key]
) -> None:
    verifier = make_verifier(issuer, clock, fetch_timeout=0.3)
    async with client_for(verifier) as client:
        assert (await client.get("/private", headers=bearer(mint.token()))).status_code == 200
        slow = 3.0
        issuer.delay = slow
        clock.advance(31)
        started = time.perf_counter()
        unknown = mint.token(key=keys[1])
        responses = await asyncio.gather(
            *(client.get("/private", headers=bearer(unknown)) for _ in range(20))
        )
        assert {response.status_code for response in responses} == {401}
        assert time.perf_counter() - started < slow / 2  # none waited for the slow server
        # Meanwhile the known key still serves requests at once: no fetch to wait for.
        fetches = verifier.keys.fetches
        fresh = mint.token(jti="fresh")
        assert (await client.get("/private", headers=bearer(fresh))).status_code == 200
        assert verifier.keys.fetches == fetches
    issuer.delay = 0
    await verifier.aclose()


async def test_with_no_reachable_issuer_requests_get_401_quickly(
    clock: FakeClock, mint: Minter
) -> None:
    nowhere = Issuer(url="http://127.0.0.1:9")  # the discard port: nothing listens
    verifier = make_verifier(nowhere, clock)
    async with client_for(verifier) as client:
        started = time.perf_counter()
        response = await client.get("/private", headers=bearer(mint.token(iss=nowhere.url)))
        assert response.status_code == 401
        assert time.perf_counter() - started < verifier.fetch_timeout * 1.5
        assert verifier.discovery_fetches == 1  # one attempt, no retries
    await verifier.aclose()


async def test_a_broken_jwks_document_keeps_the_old_keys(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    await verifier.verify(mint.token())
    for broken in ({"keys": "nope"}, {"keys": []}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}):
        issuer.jwks = broken
        clock.advance(31)
        with pytest.raises(TokenRefused):
            await verifier.verify(mint.token(key=keys[1]))
        assert (await verifier.verify(mint.token(jti=uuid.uuid4().hex))).scopes
    issuer.status = 500
    issuer.publish(keys[0])
    clock.advance(31)
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=keys[1]))
    assert (await verifier.verify(mint.token(jti=uuid.uuid4().hex))).scopes


async def test_unusable_jwks_entries_are_skipped(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, keys: list[Key]
) -> None:
    small = Key("small", rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505 - must be refused
    issuer.jwks = {
        "keys": [
            keys[1].jwk(use="enc"),  # an encryption key
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},  # a shared secret
            small.jwk(),  # too short
            {"kty": "RSA", "kid": "junk", "n": "AQAB", "e": 5},
            "not a key",
            keys[0].jwk(),
        ]
    }
    await verifier.verify(mint.token())
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=keys[1]))
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=small))


# -- the verified-token cache ---------------------------------------------------------


async def test_the_cache_never_serves_a_token_past_its_exp(
    verifier: TokenVerifier, mint: Minter, clock: FakeClock
) -> None:
    token = mint.token(exp=int(clock.time()) + 5)
    await verifier.verify(token)
    fetches = verifier.keys.fetches
    await verifier.verify(token)  # a hit
    clock.advance(5 + verifier.leeway + 1)
    with pytest.raises(TokenRefused, match="expired"):
        await verifier.verify(token)
    assert verifier.keys.fetches == fetches


async def test_the_cache_entry_ends_at_exp_even_within_the_leeway(
    verifier: TokenVerifier, mint: Minter, clock: FakeClock
) -> None:
    token = mint.token(exp=int(clock.time()) + 5)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache
    clock.advance(6)
    again = await verifier.verify(token)  # accepted within the leeway...
    assert again is not first  # ...but verified in full again, not served from the cache
    clock.advance(verifier.leeway)
    with pytest.raises(TokenRefused):
        await verifier.verify(token)


async def test_the_cache_is_bounded(issuer: Issuer, clock: FakeClock, mint: Minter) -> None:
    verifier = make_verifier(issuer, clock, cache_size=10)
    tokens = [mint.token() for _ in range(50)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier._cache) == 10
    assert set(verifier._cache) == set(tokens[-10:])
    await verifier.aclose()


async def test_failures_are_never_cached(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock
) -> None:
    good = mint.token()
    await verifier.verify(good)
    wrong_aud = mint.token(aud="https://other.example/api")
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    for bad in (wrong_aud, tampered, wrong_aud, tampered):
        with pytest.raises(TokenRefused):
            await verifier.verify(bad)
    assert set(verifier._cache) == {good}


async def test_a_token_without_kid_uses_the_issuers_only_key(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    await verifier.verify(mint.token(headers={"kid": None}))
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token(key=keys[1], headers={"kid": None}))
    # With two keys published, a token without kid is ambiguous: refused.
    issuer.publish(keys[0], keys[1])
    clock.advance(31)
    await verifier.verify(mint.token(key=keys[1]))  # picks up the new key
    with pytest.raises(TokenRefused, match="several"):
        await verifier.verify(mint.token(headers={"kid": None}, jti="another"))


async def test_a_jwks_server_that_trickles_bytes_cannot_hold_requests(
    issuer: Issuer, clock: FakeClock, mint: Minter, keys: list[Key]
) -> None:
    # One byte every 50 ms never trips a per-read timeout; the whole body takes
    # about 20 s. Requests must still get their answer within the budget.
    verifier = make_verifier(issuer, clock, fetch_timeout=0.5)
    async with client_for(verifier) as client:
        assert (await client.get("/private", headers=bearer(mint.token()))).status_code == 200
        issuer.trickle = 0.05
        clock.advance(31)
        started = time.perf_counter()
        unknown = bearer(mint.token(key=keys[1]))
        assert (await client.get("/private", headers=unknown)).status_code == 401
        assert time.perf_counter() - started < verifier.fetch_timeout * 3
        # The refresh gave up too, so the next request is not held either: no fetch
        # starts for it, and none is left running to wait for.
        fetches = verifier.keys.fetches
        assert (await client.get("/private", headers=unknown)).status_code == 401
        assert verifier.keys.fetches == fetches
        assert not verifier.keys.refreshing
    issuer.trickle = 0
    await verifier.aclose()


async def test_a_private_key_in_the_jwks_is_not_used(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, keys: list[Key]
) -> None:
    # A provider that publishes its private key by mistake: refuse to trust it
    # (and never crash on it).
    private = json.loads(RSAAlgorithm.to_jwk(keys[0].private))
    issuer.jwks = {"keys": [{**private, "kid": "key-1", "use": "sig"}]}
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token())


async def test_old_keys_are_refetched_in_the_background(
    verifier: TokenVerifier, mint: Minter, issuer: Issuer, clock: FakeClock, keys: list[Key]
) -> None:
    # No token ever names an unknown kid, yet a key the issuer withdrew must stop
    # working once the keys are older than jwks_max_age.
    await verifier.verify(mint.token())
    issuer.publish(keys[1])  # key-1 withdrawn
    clock.advance(verifier.keys.max_age - 1)
    await verifier.verify(mint.token())  # still young: no fetch
    assert issuer.jwks_fetches == 1
    clock.advance(2)
    await verifier.verify(mint.token())  # served at once with the keys we hold...
    await verifier.keys.settled()  # ...while the refetch runs in the background
    assert issuer.jwks_fetches == 2
    with pytest.raises(TokenRefused):
        await verifier.verify(mint.token())
    await verifier.verify(mint.token(key=keys[1]))


async def test_verifiers_of_one_issuer_can_share_its_key_store(
    issuer: Issuer, clock: FakeClock, mint: Minter, keys: list[Key]
) -> None:
    async with httpx2.AsyncClient() as shared:
        store = KeyStore(f"{issuer.url}/jwks.json", client=shared, monotonic=clock.monotonic)
        first = make_verifier(issuer, clock, client=shared, keys=store)
        other = make_verifier(issuer, clock, client=shared, keys=store, audience="urn:other")
        assert first.keys is other.keys is store
        await first.verify(mint.token())
        await other.verify(mint.token(aud="urn:other"))
        assert issuer.jwks_fetches == store.fetches == 1
        # A key withdrawn for one is withdrawn for both.
        issuer.publish(keys[1])
        clock.advance(store.cooldown)
        await first.verify(mint.token(key=keys[1]))
        with pytest.raises(TokenRefused, match="not signed by a key"):
            await other.verify(mint.token(aud="urn:other"))
        assert issuer.discovery_fetches == 0  # the store was given its jwks_uri
