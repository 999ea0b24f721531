"""DPoP-bound access tokens at the API (RFC 9449): a proof per request, or 401."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from pingapp.api import create_api, well_known_route
from pingapp.api.dpop import build_dpop_policy, nonce_secret
from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import DPoPKey, NonceSource, StoreReplayCache, make_proof
from pingapp.oidc.store import DiskStore
from pingapp.settings import Settings, get_settings
from tests.support.api import bearer, challenge, challenges, serve
from tests.support.clock import FakeClock
from tests.support.dpop_api import DPOP_BASE, PUBLIC_API, dpop_client, dpop_policy, with_proof
from tests.support.issuers import Minter

SCOPED = "/private-scoped"
PATHS = ["/private", SCOPED]


@pytest.fixture
async def client(verifier: TokenVerifier, clock: FakeClock) -> AsyncIterator[httpx2.AsyncClient]:
    async with dpop_client(verifier, dpop_policy(clock)) as client:
        yield client


@pytest.fixture
def bound(mint: Minter, dpop_key: DPoPKey) -> str:
    """An access token bound to `dpop_key`."""
    return mint.token(cnf={"jkt": dpop_key.jkt})


def proof_refused(response: httpx2.Response, error: str = "invalid_dpop_proof") -> dict[str, str]:
    """Check a 401 naming `error` in the DPoP challenge, with algs and the metadata URL."""
    assert response.status_code == 401, response.text
    params = challenge(response, "DPoP")
    assert params["error"] == error
    assert "ES256" in params["algs"].split()
    assert params["resource_metadata"] == (
        "https://api.example.test/.well-known/oauth-protected-resource/api"
    )
    assert response.json()["error"] == error
    return params


@pytest.mark.parametrize("path", PATHS)
async def test_a_bound_token_with_a_valid_proof_is_accepted(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock, path: str
) -> None:
    response = await client.get(path, headers=with_proof(dpop_key, bound, path, clock))
    assert response.status_code == 200, response.text
    # The token is cached now; the next request still needs a fresh proof of its own.
    again = await client.get(path, headers=with_proof(dpop_key, bound, path, clock))
    assert again.status_code == 200
    alone = await client.get(path, headers={"Authorization": f"DPoP {bound}"})
    proof_refused(alone)


@pytest.mark.parametrize("path", PATHS)
async def test_a_bound_token_sent_as_bearer_is_refused(
    client: httpx2.AsyncClient, bound: str, path: str
) -> None:
    response = await client.get(path, headers=bearer(bound))
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"
    assert "DPoP-bound" in challenge(response)["error_description"]
    assert "error" not in challenge(response, "DPoP")
    assert challenge(response, "DPoP")["algs"]


async def test_a_proof_for_another_method_or_url_is_refused(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    for headers in (
        with_proof(dpop_key, bound, "/private", clock, method="POST"),
        with_proof(dpop_key, bound, "/public", clock),
        with_proof(dpop_key, bound, SCOPED, clock),
    ):
        proof_refused(await client.get("/private", headers=headers))
    # The URL the client called, not the public one: refused too.
    local = make_proof(dpop_key, "GET", f"{DPOP_BASE}/private", access_token=bound)
    headers = {"Authorization": f"DPoP {bound}", "DPoP": local}
    proof_refused(await client.get("/private", headers=headers))


async def test_forwarded_headers_do_not_change_the_expected_url(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    proof = make_proof(dpop_key, "GET", "https://evil.test/api/private", access_token=bound)
    forged = {"X-Forwarded-Host": "evil.test", "X-Forwarded-Proto": "https", "Host": "evil.test"}
    headers = {"Authorization": f"DPoP {bound}", "DPoP": proof, **forged}
    proof_refused(await client.get("/private", headers=headers))
    good = with_proof(dpop_key, bound, "/private", clock)
    assert (await client.get("/private", headers={**good, **forged})).status_code == 200


async def test_a_replayed_proof_is_refused(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    headers = with_proof(dpop_key, bound, "/private", clock)
    assert (await client.get("/private", headers=headers)).status_code == 200
    clock.advance(30)
    params = proof_refused(await client.get("/private", headers=headers))
    assert "already used" in params["error_description"]


async def test_another_keys_proof_is_refused(
    client: httpx2.AsyncClient, bound: str, clock: FakeClock
) -> None:
    other = DPoPKey.generate()
    proof_refused(await client.get("/private", headers=with_proof(other, bound, "/private", clock)))


async def test_a_proof_without_or_with_a_wrong_ath_is_refused(
    client: httpx2.AsyncClient, bound: str, mint: Minter, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    url = PUBLIC_API + "/private"
    for access_token in (None, mint.token(cnf={"jkt": dpop_key.jkt})):
        proof = make_proof(dpop_key, "GET", url, access_token=access_token, now=clock.time())
        headers = {"Authorization": f"DPoP {bound}", "DPoP": proof}
        proof_refused(await client.get("/private", headers=headers))


async def test_two_proofs_or_none_are_refused(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    one = with_proof(dpop_key, bound, "/private", clock)
    two = with_proof(dpop_key, bound, "/private", clock)
    headers = [("Authorization", one["Authorization"]), ("DPoP", one["DPoP"])]
    proof_refused(await client.get("/private", headers=[*headers, ("DPoP", two["DPoP"])]))
    proof_refused(await client.get("/private", headers={"Authorization": f"DPoP {bound}"}))


def ahead(key: DPoPKey, token: str, clock: FakeClock, seconds: float) -> dict[str, str]:
    """Headers with a proof whose `iat` is `seconds` ahead of the API's clock."""
    url = PUBLIC_API + "/private"
    made = make_proof(key, "GET", url, access_token=token, now=clock.time() + seconds)
    return {"Authorization": f"DPoP {token}", "DPoP": made}


async def test_a_proof_outside_the_iat_window_is_refused(
    client: httpx2.AsyncClient, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    headers = with_proof(dpop_key, bound, "/private", clock)
    clock.advance(61)  # the proof is now older than the 60-second window
    proof_refused(await client.get("/private", headers=headers))
    # SECURITY 49: at most 5 seconds ahead of the API's clock.
    for seconds in (6, 30, 61):
        params = proof_refused(
            await client.get("/private", headers=ahead(dpop_key, bound, clock, seconds))
        )
        assert "iat" in params["error_description"]
    five = await client.get("/private", headers=ahead(dpop_key, bound, clock, 5))
    assert five.status_code == 200, five.text


async def test_over_http_a_proof_from_the_future_gets_a_dpop_401(
    verifier: TokenVerifier, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    """SECURITY 49, as an attacker sends it: the API served by granian on a port (in this
    event loop, on the test's clock), raw HTTP, proofs dated ahead of the server."""
    api = create_api(verifier, dpop=dpop_policy(clock))
    async with serve(api) as url, httpx2.AsyncClient(base_url=url) as http:
        for seconds in (6, 30):
            response = await http.get("/private", headers=ahead(dpop_key, bound, clock, seconds))
            params = proof_refused(response)
            assert "iat" in params["error_description"]
            assert response.headers["content-type"].startswith("application/json")
        good = await http.get("/private", headers=ahead(dpop_key, bound, clock, 5))
        assert good.status_code == 200, good.text


async def test_an_unbound_token_with_the_dpop_scheme_is_refused(
    client: httpx2.AsyncClient, mint: Minter, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    # RFC 9449 4.3 (12): the proof key must match the token's binding; there is none.
    token = mint.token()
    response = await client.get("/private", headers=with_proof(dpop_key, token, "/private", clock))
    assert response.status_code == 401
    assert challenge(response, "DPoP")["error"] == "invalid_token"
    assert (await client.get("/private", headers=bearer(token))).status_code == 200


async def test_a_malformed_cnf_is_refused(
    client: httpx2.AsyncClient, mint: Minter, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    for cnf in ({"x5t#S256": "abc"}, "jkt", {"jkt": ""}):
        token = mint.token(cnf=cnf)
        assert (await client.get("/private", headers=bearer(token))).status_code == 401
        headers = with_proof(dpop_key, token, "/private", clock)
        assert challenge(await client.get("/private", headers=headers), "DPoP")["error"] == (
            "invalid_token"
        )


async def test_a_server_nonce_can_be_required(
    verifier: TokenVerifier, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    nonces = NonceSource(b"a test secret of 32 bytes......", lifetime=300, clock=clock.time)
    async with dpop_client(verifier, dpop_policy(clock, nonces=nonces)) as client:
        first = await client.get("/private", headers=with_proof(dpop_key, bound, "/private", clock))
        proof_refused(first, "use_dpop_nonce")
        nonce = first.headers["DPoP-Nonce"]
        assert nonce == nonces.current()
        headers = with_proof(dpop_key, bound, "/private", clock, nonce=nonce)
        ok = await client.get("/private", headers=headers)
        assert ok.status_code == 200
        assert "DPoP-Nonce" not in ok.headers  # still the current one
        wrong = with_proof(dpop_key, bound, "/private", clock, nonce="not-a-nonce")
        proof_refused(await client.get("/private", headers=wrong), "use_dpop_nonce")
        # Rotated: the previous nonce still works once more, and the answer brings the new one.
        clock.advance(300)
        headers = with_proof(dpop_key, bound, "/private", clock, nonce=nonce)
        rotated = await client.get("/private", headers=headers)
        assert rotated.status_code == 200
        assert rotated.headers["DPoP-Nonce"] == nonces.current() != nonce
        # Bearer tokens are not asked for a nonce.
        plain = await client.get("/private", headers=bearer("x.y.z"))
        assert "DPoP-Nonce" not in plain.headers


async def test_require_dpop_refuses_plain_bearer_tokens(
    verifier: TokenVerifier, mint: Minter, bound: str, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    async with dpop_client(verifier, dpop_policy(clock, required=True)) as client:
        response = await client.get("/private", headers=bearer(mint.token()))
        assert response.status_code == 401
        assert set(challenges(response)) == {"DPoP"}  # no Bearer challenge
        assert challenge(response, "DPoP")["error"] == "invalid_token"
        missing = await client.get("/private")
        assert set(challenges(missing)) == {"DPoP"}
        good = with_proof(dpop_key, bound, "/private", clock)
        assert (await client.get("/private", headers=good)).status_code == 200


async def test_bearer_challenges_name_dpop_and_the_metadata(
    client: httpx2.AsyncClient, mint: Minter
) -> None:
    response = await client.get("/private", headers=bearer(mint.token(aud="other")))
    assert challenge(response)["error"] == "invalid_token"
    metadata = challenge(response)["resource_metadata"]
    assert metadata == challenge(response, "DPoP")["resource_metadata"]
    assert metadata.endswith("/.well-known/oauth-protected-resource/api")


async def test_insufficient_scope_with_dpop_names_the_dpop_scheme(
    client: httpx2.AsyncClient, mint: Minter, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    token = mint.token(scope="openid", cnf={"jkt": dpop_key.jkt})
    response = await client.get(SCOPED, headers=with_proof(dpop_key, token, SCOPED, clock))
    assert response.status_code == 403
    assert challenge(response, "DPoP")["error"] == "insufficient_scope"


async def test_a_step_up_refusal_names_the_scheme_used(
    client: httpx2.AsyncClient, mint: Minter, dpop_key: DPoPKey, clock: FakeClock
) -> None:
    old = int(clock.time()) - 86_400
    token = mint.token(cnf={"jkt": dpop_key.jkt}, auth_time=old)
    path = "/private-recent"
    response = await client.get(path, headers=with_proof(dpop_key, token, path, clock))
    assert response.status_code == 401
    assert challenge(response, "DPoP")["error"] == "insufficient_user_authentication"
    assert "max_age" in challenge(response, "DPoP")
    plain = await client.get(path, headers=bearer(mint.token(auth_time=old)))
    assert challenge(plain)["error"] == "insufficient_user_authentication"
    assert "error" not in challenge(plain, "DPoP")
    assert challenge(plain)["resource_metadata"].endswith("/oauth-protected-resource/api")


async def test_two_backends_sharing_a_store_refuse_each_others_proofs(
    verifier: TokenVerifier, bound: str, dpop_key: DPoPKey, clock: FakeClock, tmp_path: Path
) -> None:
    store = DiskStore(tmp_path / "shared", clock=clock.time)
    policies = [
        dpop_policy(clock, replay=StoreReplayCache(store, clock=clock.time)) for _ in range(2)
    ]
    async with dpop_client(verifier, policies[0]) as one, dpop_client(verifier, policies[1]) as two:
        headers = with_proof(dpop_key, bound, "/private", clock)
        assert (await one.get("/private", headers=headers)).status_code == 200
        proof_refused(await two.get("/private", headers=headers))


async def test_the_protected_resource_metadata(
    verifier: TokenVerifier, clock: FakeClock, bound: str, dpop_key: DPoPKey
) -> None:
    api = create_api(verifier, dpop=dpop_policy(clock, required=True))
    outer = Starlette(routes=[well_known_route(api), Mount("/api", app=api)])
    transport = httpx2.ASGITransport(app=outer)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        response = await client.get("/.well-known/oauth-protected-resource/api")
        inner = await client.get("/api/.well-known/oauth-protected-resource")
        # Mounted at /api, the request's htu is still the public URL plus the route.
        headers = with_proof(dpop_key, bound, "/private", clock)
        assert (await client.get("/api/private", headers=headers)).status_code == 200
    assert response.status_code == 200
    document = response.json()
    assert document == inner.json()
    assert document["resource"] == PUBLIC_API
    assert document["authorization_servers"] == [verifier.issuer]
    assert document["scopes_supported"] == ["read:messages"]
    assert document["bearer_methods_supported"] == ["header"]
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert "HS256" not in document["dpop_signing_alg_values_supported"]
    assert document["dpop_bound_access_tokens_required"] is True


def test_the_default_policy_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    monkeypatch.setenv("API_REQUIRE_DPOP", "true")
    monkeypatch.setenv("API_DPOP_NONCE", "true")
    get_settings.cache_clear()
    try:
        policy = build_dpop_policy(get_settings(), backend="http://127.0.0.1:8123")
        assert policy.required is True
        assert policy.nonces is not None
        assert policy.public_url == "http://127.0.0.1:8123/api"
    finally:
        get_settings.cache_clear()
    # Backends sharing SESSION_ENCRYPTION_KEY share the nonce key; no key, none derived.
    assert nonce_secret(b"k" * 44) == nonce_secret(b"k" * 44) != nonce_secret(b"j" * 44)
    assert nonce_secret(None) is None
