"""What makes a token acceptable (docs/security.md items 1, 2, 4, 5, 6, 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from pingapp.api.verifier import TokenVerifier
from tests.support.api import bearer, challenge, make_api, make_verifier
from tests.support.clock import FakeClock
from tests.support.issuers import (
    AUDIENCE,
    CLIENT_ID,
    Issuer,
    Key,
    Minter,
    b64,
    sign_raw,
    start_server,
)


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


async def assert_refused(client: httpx2.AsyncClient, token: str, path: str = "/private") -> None:
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 401, response.text
    assert challenge(response)["error"] == "invalid_token"
    assert response.json()["error"] == "invalid_token"


async def test_a_valid_token_is_accepted(client: httpx2.AsyncClient, mint: Minter) -> None:
    response = await client.get("/private", headers=bearer(mint.token()))
    assert response.status_code == 200
    assert response.json() == {
        "message": "Hello from a private endpoint! You need to be authenticated to see this."
    }


# -- 1. algorithms ---------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_in_any_casing_is_refused(
    client: httpx2.AsyncClient, mint: Minter, alg: str
) -> None:
    header = b64json({"alg": alg, "typ": "at+jwt", "kid": mint.key.kid})
    payload = b64json(mint.claims())
    for signature in ("", "c2ln"):
        await assert_refused(client, f"{header}.{payload}.{signature}")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
async def test_hs_algorithms_are_refused_even_keyed_with_the_public_key(
    client: httpx2.AsyncClient, mint: Minter, alg: str
) -> None:
    # Key confusion: an HMAC "signed" with the issuer's public key, which anyone has.
    public_pem = mint.key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64json({"alg": alg, "typ": "at+jwt", "kid": mint.key.kid})
    payload = b64json(mint.claims())
    digest = getattr(hashlib, f"sha{alg[2:]}")
    for secret in (public_pem, json.dumps(mint.key.jwk()).encode()):
        signature = hmac.new(secret, f"{header}.{payload}".encode(), digest).digest()
        await assert_refused(client, f"{header}.{payload}.{b64(signature)}")


async def test_an_algorithm_outside_the_allowlist_is_refused_and_the_list_is_configurable(
    issuer: Issuer, clock: FakeClock, mint: Minter
) -> None:
    token = mint.token(algorithm="RS384")
    strict = make_verifier(issuer, clock)
    assert strict.algorithms == frozenset({"RS256"})  # the default
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=make_api(strict)), base_url="http://t"
    ) as client:
        await assert_refused(client, token)
    relaxed = make_verifier(issuer, clock, algorithms=["RS256", "RS384"])
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=make_api(relaxed)), base_url="http://t"
    ) as client:
        assert (await client.get("/private", headers=bearer(token))).status_code == 200
    await strict.aclose()
    await relaxed.aclose()


@pytest.mark.parametrize("alg", ["none", "NONE", "HS256", "hs512"])
def test_symmetric_or_none_cannot_be_configured(issuer: Issuer, alg: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        TokenVerifier(issuer=issuer.url, audience=AUDIENCE, algorithms=["RS256", alg])


async def test_a_key_whose_alg_differs_from_the_token_is_not_used(
    issuer: Issuer, clock: FakeClock, keys: list[Key], mint: Minter
) -> None:
    # The JWK says RS384; a token claiming RS256 with that kid must not verify.
    issuer.jwks = {"keys": [keys[0].jwk(alg="RS384")]}
    verifier = make_verifier(issuer, clock, algorithms=["RS256", "RS384"])
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=make_api(verifier)), base_url="http://t"
    ) as client:
        await assert_refused(client, mint.token(algorithm="RS256"))
        ok = await client.get("/private", headers=bearer(mint.token(algorithm="RS384")))
        assert ok.status_code == 200
    await verifier.aclose()


# -- 2. keys only from the issuer's jwks_uri ------------------------------------


async def test_keys_named_in_the_header_are_never_used_or_fetched(
    client: httpx2.AsyncClient, mint: Minter, keys: list[Key]
) -> None:
    attacker = Issuer()
    attacker.publish(keys[2])
    attacker_server = start_server(attacker)
    try:
        evil = keys[2]  # a key the issuer never published
        headers = {
            "jku": f"{attacker.url}/jwks.json",
            "x5u": f"{attacker.url}/cert.pem",
            "jwk": evil.jwk(),
            "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        }
        # Signed by the attacker's key; kid pointing at the attacker's key, then at the issuer's.
        await assert_refused(client, mint.token(key=evil, headers=headers))
        await assert_refused(client, mint.token(key=evil, headers={**headers, "kid": "key-1"}))
        assert attacker.hits == {}  # no request ever went to a URL from a token
        # The same header fields on a token signed by the issuer change nothing.
        good = mint.token(headers=headers)
        assert (await client.get("/private", headers=bearer(good))).status_code == 200
    finally:
        attacker_server.stop()


async def test_a_kid_is_only_a_lookup_key(client: httpx2.AsyncClient, mint: Minter) -> None:
    for kid in ("../../etc/passwd", "http://127.0.0.1:1/jwks", "' OR 1=1 --"):
        await assert_refused(client, mint.token(headers={"kid": kid}))
    for kid in ("", "KEY-1", "key-1 ", 12, ["key-1"], {"kid": "key-1"}):
        token = sign_raw(mint.key, {"alg": "RS256", "typ": "at+jwt", "kid": kid}, mint.claims())
        await assert_refused(client, token)


async def test_keys_come_from_the_discovered_jwks_uri(
    client: httpx2.AsyncClient, mint: Minter, issuer: Issuer
) -> None:
    assert (await client.get("/private", headers=bearer(mint.token()))).status_code == 200
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks.json": 1}


async def test_discovery_naming_another_issuer_is_not_trusted(
    issuer: Issuer, clock: FakeClock, mint: Minter
) -> None:
    # Configured with a trailing slash: the document's issuer differs, so no key is trusted.
    verifier = make_verifier(issuer, clock, issuer=issuer.url + "/")
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=make_api(verifier)), base_url="http://t"
    ) as client:
        await assert_refused(client, mint.token(iss=issuer.url + "/"))
    assert issuer.jwks_fetches == 0
    await verifier.aclose()


# -- 4. ID tokens are not access tokens -----------------------------------------


async def test_a_token_for_the_client_is_refused(client: httpx2.AsyncClient, mint: Minter) -> None:
    await assert_refused(client, mint.token(aud=CLIENT_ID))
    await assert_refused(client, mint.token(aud=[AUDIENCE, CLIENT_ID]))


@pytest.mark.parametrize(
    "typ", ["id_token+jwt", "logout+jwt", "dpop+jwt", "application/secevent+jwt", "JOSE"]
)
async def test_other_token_types_are_refused(
    client: httpx2.AsyncClient, mint: Minter, typ: str
) -> None:
    await assert_refused(client, mint.token(headers={"typ": typ}))


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
async def test_access_token_types_are_accepted(
    client: httpx2.AsyncClient, mint: Minter, typ: str
) -> None:
    assert (
        await client.get("/private", headers=bearer(mint.token(headers={"typ": typ})))
    ).is_success


async def test_where_the_issuer_sets_at_jwt_a_plain_jwt_is_refused(
    issuer: Issuer, clock: FakeClock, mint: Minter
) -> None:
    plain, untyped = mint.token(headers={"typ": "JWT"}), mint.token(headers={"typ": ""})
    assert "typ" not in jwt.get_unverified_header(untyped)
    lenient = make_verifier(issuer, clock)  # e.g. Auth0, whose access tokens say "JWT"
    strict = make_verifier(issuer, clock, require_at_jwt=True)
    for verifier, expected in ((lenient, 200), (strict, 401)):
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=make_api(verifier)), base_url="http://t"
        ) as client:
            for token in (plain, untyped):
                response = await client.get("/private", headers=bearer(token))
                assert response.status_code == expected
        await verifier.aclose()


# -- 5. iss exactly ---------------------------------------------------------------


async def test_iss_must_match_exactly(
    client: httpx2.AsyncClient, mint: Minter, issuer: Issuer
) -> None:
    url = issuer.url
    for iss in (
        url + "/",
        url + "/evil",
        url + ".evil.example",
        "https://evil.example/" + url,
        url.upper(),
        url.replace("http://", "https://"),
        url[:-1],
        [url],
        None,
    ):
        await assert_refused(client, mint.token(iss=iss))


# -- 6. aud ------------------------------------------------------------------------


async def test_aud_may_be_a_list(client: httpx2.AsyncClient, mint: Minter, issuer: Issuer) -> None:
    token = mint.token(aud=["https://other.example/api", AUDIENCE, f"{issuer.url}/userinfo"])
    assert (await client.get("/private", headers=bearer(token))).status_code == 200


async def test_another_apis_token_is_refused(client: httpx2.AsyncClient, mint: Minter) -> None:
    for aud in (
        "https://other.example/api",
        ["https://other.example/api"],
        AUDIENCE + "x",
        AUDIENCE.upper(),
        [],
        None,
        {"aud": AUDIENCE},
        [[AUDIENCE]],
    ):
        await assert_refused(client, mint.token(aud=aud))


# -- 7. exp, nbf, iat with leeway ----------------------------------------------------


async def test_exp_is_required_and_checked(
    client: httpx2.AsyncClient, mint: Minter, clock: FakeClock
) -> None:
    now = int(clock.time())
    await assert_refused(client, mint.token(exp=None))
    await assert_refused(client, mint.token(exp=now - 31))  # default leeway is 30 s
    await assert_refused(client, mint.token(exp=str(now + 600)))
    await assert_refused(client, mint.token(exp=True))
    late = await client.get("/private", headers=bearer(mint.token(exp=now - 20)))
    assert late.status_code == 200  # within the leeway


async def test_nbf_and_iat_are_honoured(
    client: httpx2.AsyncClient, mint: Minter, clock: FakeClock
) -> None:
    now = int(clock.time())
    await assert_refused(client, mint.token(nbf=now + 60))
    await assert_refused(client, mint.token(iat=now + 60))
    await assert_refused(client, mint.token(nbf="soon"))
    await assert_refused(client, mint.token(iat=[now]))
    for token in (mint.token(nbf=now + 20), mint.token(iat=now + 20)):
        assert (await client.get("/private", headers=bearer(token))).status_code == 200


async def test_non_finite_numbers_are_refused(client: httpx2.AsyncClient, mint: Minter) -> None:
    # json allows NaN and Infinity; NaN compares false with everything, so a naive
    # "exp < now" check would let it through.
    header = {"alg": "RS256", "typ": "at+jwt", "kid": mint.key.kid}
    for exp in ("NaN", "Infinity", "-Infinity"):
        claims = json.dumps(mint.claims()).replace('"exp": ', f'"exp": {exp}, "old_exp": ')
        await assert_refused(client, sign_raw(mint.key, header, claims))
    # The control: the same construction with a real number passes.
    fine = json.dumps(mint.claims()).replace('"exp": ', '"exp": 4102444800, "old_exp": ')
    assert (
        await client.get("/private", headers=bearer(sign_raw(mint.key, header, fine)))
    ).is_success


@pytest.mark.parametrize("leeway", [-1, 61, 3600])
def test_leeway_is_at_most_60_seconds(issuer: Issuer, leeway: int) -> None:
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(issuer=issuer.url, audience=AUDIENCE, leeway=leeway)


async def test_leeway_is_configurable(issuer: Issuer, clock: FakeClock, mint: Minter) -> None:
    token = mint.token(exp=int(clock.time()) - 10)
    for leeway, expected in ((0, 401), (15, 200)):
        verifier = make_verifier(issuer, clock, leeway=leeway)
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=make_api(verifier)), base_url="http://t"
        ) as client:
            assert (await client.get("/private", headers=bearer(token))).status_code == expected
        await verifier.aclose()


async def test_a_tampered_payload_is_refused(client: httpx2.AsyncClient, mint: Minter) -> None:
    header, _, signature = mint.token(scope="openid").split(".")
    forged = b64json(mint.claims(scope="openid read:messages admin"))
    await assert_refused(client, f"{header}.{forged}.{signature}", "/private-scoped")


async def test_a_respelled_signature_is_refused(client: httpx2.AsyncClient, mint: Minter) -> None:
    # 256 signature bytes take 342 base64url characters: the last one carries four
    # unused bits. Setting them gives a new string for the same bytes, which a lax
    # decoder would accept: one token, several spellings (PyJWT GHSA-hxm8-2xgr-2p9m).
    token = mint.token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    header, payload, signature = token.split(".")
    assert len(signature) % 4 == 2
    respelled = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 0x01]
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(signature + "==")
    assert (await client.get("/private", headers=bearer(token))).status_code == 200
    await assert_refused(client, f"{header}.{payload}.{respelled}")
    await assert_refused(client, f"{header}.{payload}.{signature}=")


async def test_critical_header_extensions_are_refused(
    client: httpx2.AsyncClient, mint: Minter
) -> None:
    # RFC 7515 section 4.1.11: a `crit` the verifier does not understand means refuse.
    for extra in ({"crit": ["exp"], "exp": 1}, {"crit": ["b64"], "b64": False}, {"b64": True}):
        await assert_refused(client, mint.token(headers=extra))
