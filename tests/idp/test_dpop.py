"""DPoP (RFC 9449) at the embedded provider, over HTTP: bound tokens from `/token`,
proofs checked (replay, htm/htu, iat on the provider's clock, nonces), bound refresh
tokens and codes, `/userinfo` with `Authorization: DPoP`, revocation."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx2
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from pingapp.dpop import DPoPKey, make_proof
from tests.idp.flow import Browser, callback_params, rp, verify
from tests.idp.serve import APP_REDIRECT, AUDIENCE, SECRET
from tests.support.idp_dpop import (
    challenge,
    clock_now,
    code_for,
    error_of,
    exchange,
    post_token,
    proof,
    userinfo,
)


@pytest.fixture(scope="module")
def key() -> DPoPKey:
    return DPoPKey.generate()


@pytest.fixture(scope="module")
def other_key() -> DPoPKey:
    return DPoPKey.generate("EdDSA")


def refresh(idp: dict[str, Any], token: str, *proofs: str, **extra: str) -> httpx2.Response:
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": "pingapp"}
    return post_token(idp, data | extra, *proofs)


def bound_tokens(idp: dict[str, Any], key: DPoPKey, **kwargs: Any) -> dict[str, Any]:
    code, verifier = code_for(idp)
    response = exchange(idp, code, verifier, proof(idp, key, **kwargs))
    assert response.status_code == 200, response.text
    return response.json()


def test_discovery_advertises_proof_algorithms(idp: dict[str, Any]) -> None:
    algs = idp["metadata"]["dpop_signing_alg_values_supported"]
    assert {"ES256", "EdDSA"} <= set(algs)
    assert not any(alg.startswith("HS") for alg in algs)


def test_code_exchange_with_a_proof_binds_the_access_token(
    idp: dict[str, Any], key: DPoPKey
) -> None:
    token = bound_tokens(idp, key)
    assert token["token_type"] == "DPoP"
    claims = verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["cnf"] == {"jkt": key.jkt}
    assert "refresh_token" in token


def test_without_a_proof_tokens_are_bearer_as_before(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    response = exchange(idp, code, verifier)
    assert response.status_code == 200
    token = response.json()
    assert token["token_type"] == "Bearer"
    assert "cnf" not in verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert "dpop-nonce" not in response.headers
    assert userinfo(idp, "Bearer", token["access_token"]).status_code == 200


def test_a_replayed_proof_is_refused(idp: dict[str, Any], key: DPoPKey) -> None:
    once = proof(idp, key)
    code, verifier = code_for(idp)
    assert exchange(idp, code, verifier, once).status_code == 200
    code, verifier = code_for(idp)
    assert error_of(exchange(idp, code, verifier, once)) == "invalid_dpop_proof"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "{issuer}/token"),
        ("POST", "{issuer}/userinfo"),
        ("POST", "{issuer}/token/"),
        ("POST", "https://attacker.example/idp/token"),
    ],
)
def test_a_proof_for_another_method_or_url_is_refused(
    idp: dict[str, Any], key: DPoPKey, method: str, url: str
) -> None:
    code, verifier = code_for(idp)
    wrong = make_proof(key, method, url.format(issuer=idp["issuer"]))
    assert error_of(exchange(idp, code, verifier, wrong)) == "invalid_dpop_proof"
    # the refused request did not use up the code
    assert exchange(idp, code, verifier, proof(idp, key)).status_code == 200


def test_a_forwarded_host_does_not_change_the_expected_url(
    idp: dict[str, Any], key: DPoPKey
) -> None:
    code, verifier = code_for(idp)
    spoofed = make_proof(key, "POST", "https://public.example/idp/token")
    response = httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": APP_REDIRECT,
            "client_id": "pingapp",
        },
        headers={
            "DPoP": spoofed,
            "X-Forwarded-Host": "public.example",
            "X-Forwarded-Proto": "https",
        },
    )
    assert error_of(response) == "invalid_dpop_proof"


def test_two_proofs_or_a_malformed_one_are_refused(idp: dict[str, Any], key: DPoPKey) -> None:
    code, verifier = code_for(idp)
    two = exchange(idp, code, verifier, proof(idp, key), proof(idp, key))
    assert error_of(two) == "invalid_dpop_proof"
    assert error_of(exchange(idp, code, verifier, "not.a.proof")) == "invalid_dpop_proof"
    assert exchange(idp, code, verifier, proof(idp, key)).status_code == 200


def test_a_public_clients_refresh_token_needs_the_same_key(
    idp: dict[str, Any], key: DPoPKey, other_key: DPoPKey
) -> None:
    first = bound_tokens(idp, key)
    rt = first["refresh_token"]
    assert error_of(refresh(idp, rt)) == "invalid_grant"
    other = refresh(idp, rt, proof(idp, other_key))
    assert error_of(other) == "invalid_grant"
    assert "bound to a DPoP key" in other.json()["error_description"]
    # refused attempts neither used the token up nor revoked the grant
    response = refresh(idp, rt, proof(idp, key))
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["token_type"] == "DPoP"
    claims = verify(idp, second["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["cnf"] == {"jkt": key.jkt}
    # and the rotated refresh token is bound in turn
    assert error_of(refresh(idp, second["refresh_token"])) == "invalid_grant"


def test_a_confidential_clients_refresh_token_is_not_bound(
    idp: dict[str, Any], key: DPoPKey, other_key: DPoPKey
) -> None:
    code, verifier = code_for(idp, "confidential")
    secret = {"client_id": "confidential", "client_secret": SECRET}
    response = exchange(idp, code, verifier, proof(idp, key), **secret)
    assert response.status_code == 200, response.text
    rt = response.json()["refresh_token"]
    # RFC 9449 section 5: the client's authentication already constrains it
    plain = refresh(idp, rt, **secret)
    assert plain.status_code == 200, plain.text
    assert plain.json()["token_type"] == "Bearer"
    rebound = refresh(idp, plain.json()["refresh_token"], proof(idp, other_key), **secret)
    assert rebound.json()["token_type"] == "DPoP"
    claims = verify(idp, rebound.json()["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["cnf"] == {"jkt": other_key.jkt}


def test_a_code_asked_for_with_dpop_jkt_needs_that_key(
    idp: dict[str, Any], key: DPoPKey, other_key: DPoPKey
) -> None:
    code, verifier = code_for(idp, dpop_jkt=key.jkt)
    wrong = exchange(idp, code, verifier, proof(idp, other_key))
    assert error_of(wrong) == "invalid_grant"
    assert "bound to a DPoP key" in wrong.json()["error_description"]
    code, verifier = code_for(idp, dpop_jkt=key.jkt)
    assert error_of(exchange(idp, code, verifier)) == "invalid_grant"
    code, verifier = code_for(idp, dpop_jkt=key.jkt)
    response = exchange(idp, code, verifier, proof(idp, key))
    assert response.status_code == 200
    assert response.json()["token_type"] == "DPoP"


VERIFIER = secrets.token_urlsafe(48)


def pushed_code(idp: dict[str, Any], dpop_jkt: str) -> str:
    """A code from a pushed authorization request (RFC 9126) that names `dpop_jkt`."""
    pushed = httpx2.post(
        idp["metadata"]["pushed_authorization_request_endpoint"],
        data={
            "client_id": "pingapp",
            "response_type": "code",
            "redirect_uri": APP_REDIRECT,
            "scope": "openid offline_access",
            "code_challenge": create_s256_code_challenge(VERIFIER),
            "code_challenge_method": "S256",
            "state": "s",
            "dpop_jkt": dpop_jkt,
        },
    )
    assert pushed.status_code == 201, pushed.text
    url = rp().create_authorization_url(
        idp["metadata"]["authorization_endpoint"], request_uri=pushed.json()["request_uri"]
    )[0]
    browser = Browser(idp["issuer"])
    page = browser.sign_in(browser.open(url))
    if page.status_code == 200:
        page = browser.consent(page)
    return callback_params(page)["code"]


def test_a_pushed_request_with_dpop_jkt_binds_the_code(
    par_idp: dict[str, Any], key: DPoPKey, other_key: DPoPKey
) -> None:
    code = pushed_code(par_idp, key.jkt)
    wrong = exchange(par_idp, code, VERIFIER, proof(par_idp, other_key))
    assert error_of(wrong) == "invalid_grant"
    assert "DPoP" in wrong.json()["error_description"]
    code = pushed_code(par_idp, key.jkt)
    right = exchange(par_idp, code, VERIFIER, proof(par_idp, key))
    assert right.status_code == 200, right.text
    assert right.json()["token_type"] == "DPoP"


def test_a_nonce_is_asked_for_then_accepted(nonce_idp: dict[str, Any], key: DPoPKey) -> None:
    code, verifier = code_for(nonce_idp)
    first = exchange(nonce_idp, code, verifier, proof(nonce_idp, key))
    assert error_of(first) == "use_dpop_nonce"
    nonce = first.headers["dpop-nonce"]
    stale = exchange(nonce_idp, code, verifier, proof(nonce_idp, key, nonce="stale" * 8))
    assert error_of(stale) == "use_dpop_nonce"
    response = exchange(nonce_idp, code, verifier, proof(nonce_idp, key, nonce=nonce))
    assert response.status_code == 200, response.text
    token = response.json()
    assert token["token_type"] == "DPoP"
    assert response.headers["dpop-nonce"]
    # userinfo asks for the nonce too, with a DPoP challenge
    at = token["access_token"]
    asked = userinfo(nonce_idp, "DPoP", at, proof(nonce_idp, key, "/userinfo", method="GET"))
    assert 'error="use_dpop_nonce"' in challenge(asked)
    fresh = asked.headers["dpop-nonce"]
    good = proof(nonce_idp, key, "/userinfo", method="GET", access_token=at, nonce=fresh)
    assert userinfo(nonce_idp, "DPoP", at, good).status_code == 200


def test_iat_is_checked_on_the_providers_clock(clocked_idp: dict[str, Any], key: DPoPKey) -> None:
    idp = clocked_idp
    now = clock_now(idp)
    code, verifier = code_for(idp)
    for iat in (time.time(), now - 61, now + 61):
        refused = exchange(idp, code, verifier, proof(idp, key, now=iat))
        assert error_of(refused) == "invalid_dpop_proof"
    response = exchange(idp, code, verifier, proof(idp, key, now=now - 59))
    assert response.status_code == 200, response.text
    at = response.json()["access_token"]
    made = proof(idp, key, "/userinfo", method="GET", access_token=at, now=now)
    later = clock_now(idp, 120)
    assert 'error="invalid_dpop_proof"' in challenge(userinfo(idp, "DPoP", at, made))
    made = proof(idp, key, "/userinfo", method="GET", access_token=at, now=later)
    assert userinfo(idp, "DPoP", at, made).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_with_dpop(idp: dict[str, Any], key: DPoPKey, method: str) -> None:
    at = bound_tokens(idp, key)["access_token"]
    made = proof(idp, key, "/userinfo", method=method, access_token=at)
    response = userinfo(idp, "DPoP", at, made, method=method)
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == "alice"
    # the same proof again is a replay
    replay = challenge(userinfo(idp, "DPoP", at, made, method=method))
    assert replay.startswith('DPoP error="invalid_dpop_proof"')


def test_userinfo_refuses_proofs_that_do_not_fit(
    idp: dict[str, Any], key: DPoPKey, other_key: DPoPKey
) -> None:
    at = bound_tokens(idp, key)["access_token"]
    wrong = [
        proof(idp, key, "/userinfo", method="GET"),  # no ath
        proof(idp, key, "/userinfo", method="GET", access_token=at + "x"),
        proof(idp, key, "/userinfo", method="POST", access_token=at),
        proof(idp, key, "/token", method="GET", access_token=at),
        proof(idp, other_key, "/userinfo", method="GET", access_token=at),
    ]
    for made in wrong:
        header = challenge(userinfo(idp, "DPoP", at, made))
        assert header.startswith('DPoP error="invalid_dpop_proof"'), header
        assert 'algs="' in header and "ES256" in header
    assert 'error="invalid_dpop_proof"' in challenge(userinfo(idp, "DPoP", at))


def test_a_bound_token_sent_as_bearer_is_refused(idp: dict[str, Any], key: DPoPKey) -> None:
    at = bound_tokens(idp, key)["access_token"]
    header = challenge(userinfo(idp, "Bearer", at))
    assert header.startswith('DPoP error="invalid_token"')
    assert 'algs="' in header


def test_a_bearer_token_sent_as_dpop_is_refused(idp: dict[str, Any], key: DPoPKey) -> None:
    code, verifier = code_for(idp)
    at = exchange(idp, code, verifier).json()["access_token"]
    made = proof(idp, key, "/userinfo", method="GET", access_token=at)
    assert challenge(userinfo(idp, "DPoP", at, made)).startswith('DPoP error="invalid_token"')


@pytest.mark.parametrize("token", ["garbage", "", "a.b.c"])
def test_a_malformed_dpop_token_is_refused(idp: dict[str, Any], key: DPoPKey, token: str) -> None:
    made = proof(idp, key, "/userinfo", method="GET", access_token=token or "x")
    response = httpx2.get(
        idp["metadata"]["userinfo_endpoint"],
        headers={"Authorization": f"DPoP {token}".strip(), "DPoP": made},
    )
    assert challenge(response).startswith('DPoP error="invalid_token"')


def test_revocation_of_bound_tokens(idp: dict[str, Any], key: DPoPKey) -> None:
    token = bound_tokens(idp, key)
    at, rt = token["access_token"], token["refresh_token"]
    revoke = idp["metadata"]["revocation_endpoint"]
    assert httpx2.post(revoke, data={"token": at, "client_id": "pingapp"}).status_code == 200
    made = proof(idp, key, "/userinfo", method="GET", access_token=at)
    assert challenge(userinfo(idp, "DPoP", at, made)).startswith('DPoP error="invalid_token"')
    assert httpx2.post(revoke, data={"token": rt, "client_id": "pingapp"}).status_code == 200
    assert error_of(refresh(idp, rt, proof(idp, key))) == "invalid_grant"
