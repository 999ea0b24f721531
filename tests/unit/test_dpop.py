"""pingapp.dpop: keys, proofs made and checked (each RFC 9449 §4.3 check on its own),
replay caches (memory, disk store, a real Redis) and server nonces. Time is a clock the
tests move."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import get_default_algorithms

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.dpop import (
    DEFAULT_IAT_SKEW,
    DEFAULT_IAT_WINDOW,
    INVALID_PROOF,
    USE_NONCE,
    DPoPError,
    DPoPKey,
    MemoryReplayCache,
    NonceSource,
    StoreReplayCache,
    check_proof,
    jwk_thumbprint,
    make_proof,
    normalize_htu,
    token_hash,
    verify_proof,
)
from pingapp.oidc.store import DiskStore, RedisStore

NOW = 1_800_000_000.0
URL = "https://api.example.org/api/private"
TOKEN = "an-access-token"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def other_key() -> DPoPKey:
    return DPoPKey.generate()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: Any, key: DPoPKey) -> str:
    """A JWS with exactly this header and these claims (JSON text or a value), signed
    by `key`."""
    payload = claims if isinstance(claims, str) else json.dumps(claims)
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload.encode())}"
    algorithm = get_default_algorithms()[key.alg]
    signature = algorithm.sign(signing_input.encode(), key.private_key)
    return f"{signing_input}.{b64(signature)}"


def good_header(key: DPoPKey) -> dict[str, Any]:
    return {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk}


def good_claims(**changes: Any) -> dict[str, Any]:
    claims = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": token_hash(TOKEN)}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def verify(proof: object, **options: Any) -> Any:
    options = {"method": "GET", "url": URL, "access_token": TOKEN, "clock": Clock(), **options}
    return verify_proof(proof, **options)


def refused(proof: object, error: str = INVALID_PROOF, **options: Any) -> DPoPError:
    with pytest.raises(DPoPError) as caught:
        verify(proof, **options)
    assert caught.value.error == error
    text = str(caught.value)
    assert TOKEN not in text
    if isinstance(proof, str) and proof:
        assert all(part not in text for part in proof.split(".") if len(part) > 8)
    return caught.value


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"])
def test_a_proof_of_each_algorithm_round_trips(alg: str) -> None:
    key = DPoPKey.generate(alg)
    proof = make_proof(key, "POST", URL + "?q=1#top", access_token=TOKEN, nonce="n", now=NOW)
    verified = verify(proof, method="POST", nonce="n", allowed_algs=ASYMMETRIC_ALGORITHMS)
    assert verified.jkt == key.jkt
    assert verified.alg == alg
    assert verified.jwk == key.public_jwk
    header = jwt.get_unverified_header(proof)
    assert header == {"typ": "dpop+jwt", "alg": alg, "jwk": key.public_jwk}
    assert verified.claims["htu"] == URL
    assert verified.claims["htm"] == "POST"
    assert verified.claims["iat"] == int(NOW)
    assert verified.claims["ath"] == token_hash(TOKEN)
    assert verified.claims["nonce"] == "n"


def test_a_proof_without_token_or_nonce_has_no_ath_or_nonce(key: DPoPKey) -> None:
    claims = verify(make_proof(key, "GET", URL, now=NOW), access_token=None).claims
    assert set(claims) == {"jti", "htm", "htu", "iat"}


def test_every_proof_has_its_own_random_jti(key: DPoPKey) -> None:
    jtis = {verify(make_proof(key, "GET", URL, now=NOW), access_token=None).claims["jti"]}
    jtis |= {
        verify(make_proof(key, "GET", URL, now=NOW), access_token=None).claims["jti"]
        for _ in range(99)
    }
    assert len(jtis) == 100
    assert all(len(jti) >= 22 for jti in jtis)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_a_key_survives_storage_as_jwk_and_as_pem(alg: str) -> None:
    key = DPoPKey.generate(alg)
    assert "d" in key.private_jwk()
    assert key.private_jwk()["alg"] == alg
    assert DPoPKey.from_json(key.to_json()).jkt == key.jkt
    assert DPoPKey.from_json(key.to_json().encode()).alg == alg
    from_pem = DPoPKey.from_pem(key.to_pem())
    assert (from_pem.jkt, from_pem.alg) == (key.jkt, alg)


def test_a_stored_key_is_parsed_once_and_refused_every_time() -> None:
    text = DPoPKey.generate().to_json()
    first = DPoPKey.from_json(text)
    assert DPoPKey.from_json(text) is first  # read on every call a session makes
    assert DPoPKey.from_json(text.encode()) is first
    for _ in range(2):  # a refusal is not remembered as a key
        with pytest.raises(ValueError):
            DPoPKey.from_json(text.replace('"alg":"ES256"', '"alg":"RS256"'))


def test_the_public_jwk_holds_only_public_members() -> None:
    for alg in ("ES256", "EdDSA", "RS256"):
        jwk = DPoPKey.generate(alg).public_jwk
        assert not {"d", "p", "q", "dp", "dq", "qi", "k", "key_ops"} & jwk.keys()


def test_a_pem_key_can_be_given_another_algorithm_of_its_type() -> None:
    key = DPoPKey.generate("RS256")
    assert DPoPKey.from_pem(key.to_pem(), "PS256").alg == "PS256"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"kty": "EC"}',
        json.dumps({**DPoPKey.generate().public_jwk, "alg": "ES256"}),
        json.dumps({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
        json.dumps({**DPoPKey.generate().private_jwk(), "alg": "RS256"}),
    ],
    ids=["not-json", "not-object", "no-alg", "public-only", "symmetric", "wrong-alg"],
)
def test_a_stored_key_that_is_not_a_private_dpop_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        DPoPKey.from_json(text)


def test_symmetric_and_unknown_algorithms_are_refused_for_keys() -> None:
    with pytest.raises(ValueError):
        DPoPKey.generate("HS256")
    with pytest.raises(ValueError):
        DPoPKey(ec.generate_private_key(ec.SECP256R1()), "HS256")
    with pytest.raises(ValueError):
        DPoPKey(ec.generate_private_key(ec.SECP256R1()), "RS256")
    with pytest.raises(ValueError):
        DPoPKey(ec.generate_private_key(ec.SECP256K1()))


def test_thumbprints_match_the_rfc_examples() -> None:
    # RFC 9449 §6.1 (EC) and RFC 7638 §3.1 (RSA; members outside the thumbprint ignored).
    assert (
        jwk_thumbprint(
            {
                "kty": "EC",
                "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
                "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
                "crv": "P-256",
            }
        )
        == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    )
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc"
        "_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG"
        "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdk"
        "t-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    rsa_jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(rsa_jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "oct", "k": "c2VjcmV0"})
    with pytest.raises(ValueError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AA"})


def test_the_token_hash_matches_the_rfc_example() -> None:
    # RFC 9449 §7.1.
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


# --- htu ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("https://api.example.org/api/private", URL),
        ("HTTPS://API.Example.ORG:443/api/private", URL),
        ("https://api.example.org/api/private?x=1#frag", URL),
        ("https://api.example.org/api/./x/../private", URL),
        ("https://api.example.org/api/%70rivate", URL),
        ("https://api.example.org/api/x/%2E%2e/private", URL),
        ("https://api.example.org/api/private?", URL),
        ("https://api.example.org/api/private/..//private", "https://api.example.org/api//private"),
        ("http://h.example:80", "http://h.example/"),
        ("http://h.example:8080/a%2fb", "http://h.example:8080/a%2Fb"),
        ("https://[::1]:443/x", "https://[::1]/x"),
    ],
)
def test_htu_is_normalised_per_rfc_3986(given: str, normal: str) -> None:
    assert normalize_htu(given) == normal


@pytest.mark.parametrize(
    "url", ["/relative", "ftp://h.example/", "https://user:pw@h.example/", "https://h:99999/"]
)
def test_htu_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_htu(url)


# --- one failed check at a time ----------------------------------------------------------


@pytest.mark.parametrize(
    "proof",
    [None, "", "a" * 9000, "a.b", "a.b.c.d", "é.b.c", "!!!.b.c", b64(b"[]") + ".e30.c2ln"],
    ids=["none", "empty", "too-long", "two-parts", "four-parts", "non-ascii", "bad-b64", "array"],
)
def test_what_is_not_one_compact_jws_is_refused(proof: object) -> None:
    refused(proof)


@pytest.mark.parametrize("typ", [None, "JWT", "DPoP+JWT", "dpop+jwt ", "application/dpop+jwt"])
def test_typ_must_be_exactly_dpop_jwt(key: DPoPKey, typ: str | None) -> None:
    header = {**good_header(key), "typ": typ}
    refused(compact({k: v for k, v in header.items() if v is not None}, good_claims(), key))


def test_alg_none_is_refused(key: DPoPKey) -> None:
    header = {**good_header(key), "alg": "none"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good_claims()).encode())}"
    refused(signing_input + ".")
    refused(signing_input + "." + b64(b"x"))
    refused(signing_input + ".", allowed_algs=("none", "NONE", "ES256"))


def test_an_hmac_proof_is_refused_even_when_allowed(key: DPoPKey) -> None:
    header = {**good_header(key), "alg": "HS256"}
    proof = jwt.encode(good_claims(), "k" * 32, algorithm="HS256", headers=header)
    refused(proof, allowed_algs=("HS256", "ES256"))


def test_an_algorithm_off_the_allowlist_is_refused(key: DPoPKey) -> None:
    proof = compact(good_header(key), good_claims(), key)
    refused(proof, allowed_algs=("EdDSA", "RS256"))


def test_an_alg_that_does_not_fit_the_jwk_is_refused(key: DPoPKey) -> None:
    refused(compact({**good_header(key), "alg": "ES384"}, good_claims(), key))
    refused(compact({**good_header(key), "alg": "RS256"}, good_claims(), key))


@pytest.mark.parametrize("jwk", [None, "a-string", [], {}, {"kty": "oct", "k": "c2VjcmV0"}])
def test_a_missing_or_unusable_jwk_is_refused(key: DPoPKey, jwk: Any) -> None:
    header = {**good_header(key), "jwk": jwk}
    refused(compact({k: v for k, v in header.items() if v is not None}, good_claims(), key))


@pytest.mark.parametrize("member", ["x", "y", "crv", "kty"])
def test_a_jwk_missing_a_member_is_refused(key: DPoPKey, member: str) -> None:
    jwk = {k: v for k, v in key.public_jwk.items() if k != member}
    refused(compact({**good_header(key), "jwk": jwk}, good_claims(), key))


def test_a_jwk_of_another_curve_than_alg_says_is_refused() -> None:
    p384 = DPoPKey.generate("ES384")
    refused(compact({**good_header(p384), "alg": "ES256"}, good_claims(), p384))


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
def test_a_jwk_with_a_private_member_is_refused(key: DPoPKey, member: str) -> None:
    jwk = {**key.public_jwk, member: key.private_jwk()["d"]}
    error = refused(compact({**good_header(key), "jwk": jwk}, good_claims(), key))
    assert "private" in error.description


def test_a_private_rsa_jwk_is_refused() -> None:
    rsa_key = DPoPKey.generate("RS256")
    jwk = {k: v for k, v in rsa_key.private_jwk().items() if k != "alg"}
    refused(compact({**good_header(rsa_key), "jwk": jwk}, good_claims(), rsa_key))


def test_an_unknown_critical_header_is_refused(key: DPoPKey) -> None:
    refused(compact({**good_header(key), "crit": ["exp"], "exp": 1}, good_claims(), key))


def test_a_signature_by_another_key_is_refused(key: DPoPKey, other_key: DPoPKey) -> None:
    refused(compact(good_header(key), good_claims(), other_key))


def test_changed_claims_break_the_signature(key: DPoPKey) -> None:
    header, _, signature = compact(good_header(key), good_claims(), key).split(".")
    changed = b64(json.dumps(good_claims(htm="POST")).encode())
    refused(f"{header}.{changed}.{signature}", method="POST")


def test_a_damaged_signature_is_refused(key: DPoPKey) -> None:
    header, claims, signature = compact(good_header(key), good_claims(), key).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[5] ^= 1
    refused(f"{header}.{claims}.{b64(bytes(raw))}")
    refused(f"{header}.{claims}.{signature[:-4]}")
    refused(f"{header}.{claims}.")


def test_claims_that_are_not_an_object_are_refused(key: DPoPKey) -> None:
    refused(compact(good_header(key), ["jti", "htm"], key))


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_each_required_claim_must_be_present(key: DPoPKey, claim: str) -> None:
    claims = {k: v for k, v in good_claims().items() if k != claim}
    assert claim in refused(compact(good_header(key), claims, key)).description


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("jti", 1),
        ("jti", ""),
        ("jti", "j" * 5000),
        ("htm", ["GET"]),
        ("htu", {"url": URL}),
        ("iat", str(int(NOW))),
        ("iat", True),
        ("iat", None),
        ("iat", 10**400),
        ("iat", -1),
        ("ath", 1),
    ],
)
def test_each_claim_must_have_its_type(key: DPoPKey, claim: str, value: Any) -> None:
    claims = {**good_claims(), claim: value}
    refused(compact(good_header(key), claims, key))


def test_a_non_finite_iat_is_refused(key: DPoPKey) -> None:
    for value in ("NaN", "Infinity"):
        text = json.dumps(good_claims(iat=0)).replace('"iat": 0', f'"iat": {value}')
        refused(compact(good_header(key), text, key))


@pytest.mark.parametrize("htm", ["POST", "get", "GET "])
def test_htm_must_equal_the_method(key: DPoPKey, htm: str) -> None:
    refused(compact(good_header(key), good_claims(htm=htm), key))


@pytest.mark.parametrize(
    "htu",
    [
        "https://evil.example/api/private",
        "https://api.example.org/api/public",
        "http://api.example.org/api/private",
        "https://api.example.org:8443/api/private",
        "https://api.example.org.evil.example/api/private",
        "api.example.org/api/private",
    ],
)
def test_htu_must_be_the_request_url(key: DPoPKey, htu: str) -> None:
    refused(compact(good_header(key), good_claims(htu=htu), key))


@pytest.mark.parametrize(
    "htu", ["HTTPS://API.EXAMPLE.ORG:443/api/private", URL + "?a=b", URL + "#f"]
)
def test_htu_equal_after_normalisation_is_accepted(key: DPoPKey, htu: str) -> None:
    assert verify(compact(good_header(key), good_claims(htu=htu), key)).jkt == key.jkt


def test_the_request_url_is_normalised_too(key: DPoPKey) -> None:
    proof = compact(good_header(key), good_claims(), key)
    assert verify(proof, url="https://API.example.org:443/api/private?page=2").jkt == key.jkt


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-60, True), (-61, False), (-60.5, False), (5, True), (6, False), (5.5, False), (60, False)],
)
def test_iat_may_be_60_s_old_and_5_s_ahead(key: DPoPKey, offset: float, accepted: bool) -> None:
    proof = compact(good_header(key), good_claims(), key)
    clock = Clock(NOW - offset)  # the proof's iat is `offset` seconds from the clock
    assert (DEFAULT_IAT_WINDOW, DEFAULT_IAT_SKEW) == (60, 5)
    if accepted:
        verify(proof, clock=clock)
    else:
        assert "iat" in refused(proof, clock=clock).description


def test_both_iat_limits_can_be_set(key: DPoPKey) -> None:
    proof = compact(good_header(key), good_claims(), key)
    verify(proof, clock=Clock(NOW - 30), iat_skew=30)
    refused(proof, clock=Clock(NOW - 31), iat_skew=30)
    verify(proof, clock=Clock(NOW + 10), iat_window=10)
    refused(proof, clock=Clock(NOW + 11), iat_window=10)


def test_a_required_nonce_that_is_missing_asks_for_one(key: DPoPKey) -> None:
    refused(compact(good_header(key), good_claims(), key), USE_NONCE, nonce="n-1")


@pytest.mark.parametrize("given", ["n-2", "", 7, ["n-1"]])
def test_a_wrong_nonce_asks_for_a_fresh_one(key: DPoPKey, given: Any) -> None:
    refused(compact(good_header(key), good_claims(nonce=given), key), USE_NONCE, nonce="n-1")


def test_the_required_nonce_is_accepted(key: DPoPKey) -> None:
    verify(compact(good_header(key), good_claims(nonce="n-1"), key), nonce="n-1")


def test_a_nonce_source_decides_which_nonces_are_good(key: DPoPKey) -> None:
    clock = Clock()
    source = NonceSource(b"s" * 32, lifetime=60, clock=clock)
    fresh = make_proof(key, "GET", URL, access_token=TOKEN, nonce=source.current(), now=NOW)
    verify(fresh, nonce=source.is_valid, clock=clock)
    refused(
        make_proof(key, "GET", URL, access_token=TOKEN, nonce="stale", now=NOW),
        USE_NONCE,
        nonce=source.is_valid,
        clock=clock,
    )


def test_ath_is_required_when_a_token_is_presented(key: DPoPKey) -> None:
    assert "ath" in refused(compact(good_header(key), good_claims(ath=None), key)).description


def test_ath_must_be_the_hash_of_the_presented_token(key: DPoPKey) -> None:
    proof = compact(good_header(key), good_claims(ath=token_hash("another-token")), key)
    refused(proof)
    refused(make_proof(key, "GET", URL, access_token=TOKEN + "x", now=NOW))


def test_the_proof_key_must_be_the_one_the_token_is_bound_to(
    key: DPoPKey, other_key: DPoPKey
) -> None:
    proof = compact(good_header(key), good_claims(), key)
    assert verify(proof, expected_jkt=key.jkt).jkt == key.jkt
    assert "binding" in refused(proof, expected_jkt=other_key.jkt).description
    refused(proof, expected_jkt="é")


# --- replay ------------------------------------------------------------------------------


async def test_a_replayed_proof_is_refused(key: DPoPKey) -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock=clock)
    proof = make_proof(key, "GET", URL, access_token=TOKEN, now=NOW)
    options: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN}
    await check_proof(proof, replay=cache, clock=clock, **options)
    clock.now += 30
    with pytest.raises(DPoPError) as caught:
        await check_proof(proof, replay=cache, clock=clock, **options)
    assert caught.value.error == INVALID_PROOF
    assert "already used" in caught.value.description


async def test_the_same_jti_from_another_key_is_not_a_replay(
    key: DPoPKey, other_key: DPoPKey
) -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock=clock)
    for signer in (key, other_key):
        proof = compact(good_header(signer), good_claims(), signer)
        await check_proof(proof, method="GET", url=URL, replay=cache, clock=clock)


async def test_a_seen_jti_is_forgotten_once_its_proof_is_too_old(key: DPoPKey) -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock=clock)
    proof = make_proof(key, "GET", URL, now=NOW)
    await check_proof(proof, method="GET", url=URL, replay=cache, clock=clock, iat_window=60)
    assert len(cache) == 1
    clock.now = NOW + 61
    with pytest.raises(DPoPError, match="iat"):
        await check_proof(proof, method="GET", url=URL, replay=cache, clock=clock)
    clock.now = NOW + 62
    fresh = make_proof(key, "GET", URL, now=clock.now)
    await check_proof(fresh, method="GET", url=URL, replay=cache, clock=clock)
    assert len(cache) == 1


def test_the_memory_cache_expires_keys_by_its_clock() -> None:
    clock = Clock()
    cache = MemoryReplayCache(clock=clock)
    assert cache.remember("k", NOW + 10, "owner")
    clock.now = NOW + 9.9
    assert not cache.remember("k", NOW + 10, "owner")
    clock.now = NOW + 10
    assert cache.remember("k", NOW + 20, "owner")
    assert len(cache) == 1


def test_the_memory_cache_is_bounded_and_never_lets_a_forgotten_key_back() -> None:
    clock = Clock()
    cache = MemoryReplayCache(max_entries=3, clock=clock)
    for number in range(10):  # one owner each: the whole cache is full
        assert cache.remember(f"k{number}", NOW + 10 + number, f"o{number}")
        assert len(cache) <= 3
    assert len(cache) == 3
    # k0..k6 were forgotten to make room: each of them is still refused.
    assert not any(
        cache.remember(f"k{number}", NOW + 10 + number, f"o{number}") for number in range(10)
    )
    # A proof expiring later than everything forgotten is accepted.
    assert cache.remember("fresh", NOW + 100, "o0")
    with pytest.raises(ValueError):
        MemoryReplayCache(max_entries=0)
    with pytest.raises(ValueError):
        MemoryReplayCache(max_per_owner=0)


async def test_the_disk_store_keeps_seen_proofs(tmp_path: Path, key: DPoPKey) -> None:
    clock = Clock()
    cache = StoreReplayCache(DiskStore(tmp_path / "store", clock=clock), clock=clock)
    proof = make_proof(key, "GET", URL, now=NOW)
    await check_proof(proof, method="GET", url=URL, replay=cache, clock=clock)
    with pytest.raises(DPoPError, match="already used"):
        await check_proof(proof, method="GET", url=URL, replay=cache, clock=clock)
    clock.now = NOW + 62
    assert await DiskStore(tmp_path / "store", clock=clock).count() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    folder = tmp_path_factory.mktemp("dpop-redis")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


async def test_two_backends_on_one_redis_share_seen_proofs(redis_url: str, key: DPoPKey) -> None:
    import redis.asyncio

    clock = Clock()
    first = StoreReplayCache(RedisStore(redis_url), clock=clock)
    second = StoreReplayCache(RedisStore(redis_url), clock=clock)
    proof = make_proof(key, "GET", URL, access_token=TOKEN, now=NOW)
    options: dict[str, Any] = {"method": "GET", "url": URL, "access_token": TOKEN}
    await check_proof(proof, replay=first, clock=clock, iat_window=60, **options)
    with pytest.raises(DPoPError, match="already used"):
        await check_proof(proof, replay=second, clock=clock, iat_window=60, **options)
    client = redis.asyncio.Redis.from_url(redis_url)
    names = [name async for name in client.scan_iter(match="pingapp:auth:dpop:jti:*")]
    assert len(names) == 1
    # Kept until the proof leaves the window (iat + 60 s), and no longer.
    assert 60_000 <= await client.pttl(names[0]) <= 61_000
    await client.aclose()


# --- nonces ------------------------------------------------------------------------------


def test_a_nonce_is_good_for_its_period_and_the_next() -> None:
    clock = Clock(NOW - NOW % 60)
    source = NonceSource(b"s" * 32, lifetime=60, clock=clock)
    nonce = source.current()
    assert source.is_valid(nonce)
    clock.now += 59
    assert source.current() == nonce
    clock.now += 1
    assert source.current() != nonce
    assert source.is_valid(nonce)
    clock.now += 60
    assert not source.is_valid(nonce)
    clock.now -= 180
    assert not source.is_valid(nonce)  # a nonce from the future


def test_backends_sharing_the_secret_agree_on_nonces() -> None:
    clock = Clock()
    one = NonceSource(b"s" * 32, clock=clock)
    assert NonceSource(b"s" * 32, clock=clock).is_valid(one.current())
    assert not NonceSource(b"t" * 32, clock=clock).is_valid(one.current())
    assert not NonceSource(clock=clock).is_valid(one.current())


@pytest.mark.parametrize("nonce", [None, 5, "", "x" * 32, "é" * 32, "=" * 32, "AAAA"])
def test_a_malformed_nonce_is_not_valid(nonce: Any) -> None:
    assert not NonceSource(b"s" * 32, clock=Clock()).is_valid(nonce)


def test_a_nonce_source_needs_a_long_secret_and_a_positive_lifetime() -> None:
    with pytest.raises(ValueError):
        NonceSource(b"short")
    with pytest.raises(ValueError):
        NonceSource(b"s" * 32, lifetime=0)


def test_a_kid_that_is_not_a_string_is_refused(key: DPoPKey) -> None:
    refused(compact({**good_header(key), "kid": 7}, good_claims(), key))


def test_a_non_canonical_signature_encoding_is_refused(key: DPoPKey) -> None:
    """The same bytes with a stray low bit in the last character: one proof, one text."""
    header, claims, signature = compact(good_header(key), good_claims(), key).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # An ES256 signature is 64 bytes: its last character carries 2 bits and 4 zero bits.
    stray = alphabet[alphabet.index(signature[-1]) | 1]
    assert stray != signature[-1]
    refused(f"{header}.{claims}.{signature[:-1]}{stray}")
    refused(f"{header}.{claims}.{signature}=")
