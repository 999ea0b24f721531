"""Scopes, RFC 6750 answers and what never leaks (docs/security.md items 8, 9, 10, 11)."""

from __future__ import annotations

import logging

import httpx2
import pytest

from tests.support.api import bearer, challenge, challenges, make_api, make_verifier
from tests.support.clock import FakeClock
from tests.support.issuers import Issuer, Key, Minter, Server

SCOPED = "/private-scoped"


def assert_rfc6750_body(response: httpx2.Response, error: str) -> None:
    body = response.json()
    assert set(body) == {"error", "error_description", "message"}
    assert body["error"] == error
    assert body["error_description"]
    assert body["message"]


# -- 8. scopes ------------------------------------------------------------------------


async def test_the_scoped_route_needs_read_messages(
    client: httpx2.AsyncClient, mint: Minter
) -> None:
    token = mint.token(scope="openid profile")
    assert (await client.get("/private", headers=bearer(token))).status_code == 200
    response = await client.get(SCOPED, headers=bearer(token))
    assert response.status_code == 403
    assert challenge(response)["error"] == "insufficient_scope"
    assert challenge(response)["scope"] == "read:messages"
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert_rfc6750_body(response, "insufficient_scope")
    ok = await client.get(SCOPED, headers=bearer(mint.token(scope="openid read:messages")))
    assert ok.status_code == 200
    assert "scope of read:messages" in ok.json()["message"]


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "read:messages"},
        {"scope": None, "scp": "openid read:messages"},
        {"scope": None, "scp": ["openid", "read:messages"]},
        {"scope": None, "permissions": ["read:messages"]},
        {"scope": "openid", "permissions": ["write:messages", "read:messages"]},
    ],
)
async def test_scopes_come_from_scope_scp_and_permissions(
    client: httpx2.AsyncClient, mint: Minter, claims: dict
) -> None:
    assert (await client.get(SCOPED, headers=bearer(mint.token(**claims)))).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "read:messages:all"},
        {"scope": "xread:messages"},
        {"scope": "read:message"},
        {"scope": "READ:MESSAGES"},
        {"scope": ["read:messages"]},  # scope must be a string (RFC 9068)
        {"scope": None, "permissions": "read:messages"},  # permissions is a list (Auth0)
        {"scope": None, "scp": [["read:messages"]]},
        {"scope": None},
    ],
)
async def test_near_misses_are_not_the_scope(
    client: httpx2.AsyncClient, mint: Minter, claims: dict
) -> None:
    response = await client.get(SCOPED, headers=bearer(mint.token(**claims)))
    assert response.status_code == 403


async def test_scopes_are_checked_only_after_full_validation(
    client: httpx2.AsyncClient, mint: Minter, clock: FakeClock, keys: list[Key]
) -> None:
    # Each token has the scope but fails validation: 401, never 200 nor 403.
    for token in (
        mint.token(exp=int(clock.time()) - 3600),
        mint.token(aud="https://other.example/api"),
        mint.token(key=keys[2]),
        mint.token(headers={"typ": "id_token+jwt"}),
    ):
        response = await client.get(SCOPED, headers=bearer(token))
        assert response.status_code == 401
        # and without the scope too: still 401, not 403
        response = await client.get(SCOPED, headers=bearer(token.replace("x", "y", 1)))
        assert response.status_code in {400, 401}


# -- 9. RFC 6750 answers --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/private", SCOPED])
async def test_no_token_is_401_with_a_bare_challenge(client: httpx2.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    # A bare challenge per accepted scheme: no error, where the metadata is (RFC 9728).
    assert response.headers["www-authenticate"].startswith("Bearer resource_metadata=")
    found = challenges(response)
    assert "error" not in found["Bearer"] and "error" not in found["DPoP"]
    assert response.json()["error"] != "invalid_token"
    assert set(response.json()) == {"error", "error_description", "message"}


@pytest.mark.parametrize("path", ["/private", SCOPED])
@pytest.mark.parametrize(
    "token", ["abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "x" * 20_000, "a.b.c.d.e"]
)
async def test_a_bad_token_is_401_invalid_token(
    client: httpx2.AsyncClient, path: str, token: str
) -> None:
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 401
    assert challenge(response)["error"] == "invalid_token"
    assert "error_description" in challenge(response)
    assert_rfc6750_body(response, "invalid_token")


@pytest.mark.parametrize(
    "value",
    [
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Bearer a,b",
        "Bearer a\tb",
        "Bearerabc",
        "Bearer ü",
        "Bearer =abc",
    ],
)
async def test_malformed_credentials_are_400_invalid_request(
    client: httpx2.AsyncClient, mint: Minter, value: str
) -> None:
    value = value.replace("a b", f"{mint.token()} {mint.token()}")
    response = await client.get("/private", headers=[(b"authorization", value.encode("utf-8"))])
    assert response.status_code == 400
    assert challenge(response)["error"] == "invalid_request"
    assert_rfc6750_body(response, "invalid_request")


async def test_two_authorization_headers_are_400(client: httpx2.AsyncClient, mint: Minter) -> None:
    token = mint.token()
    headers = [(b"authorization", f"Bearer {token}".encode())] * 2
    response = await client.get("/private", headers=headers)
    assert response.status_code == 400
    assert challenge(response)["error"] == "invalid_request"


async def test_the_scheme_is_case_insensitive(client: httpx2.AsyncClient, mint: Minter) -> None:
    for scheme in ("bearer", "BEARER", "BeArEr"):
        headers = {"Authorization": f"{scheme} {mint.token()}"}
        assert (await client.get("/private", headers=headers)).status_code == 200


async def test_unknown_routes_and_methods_are_not_5xx(client: httpx2.AsyncClient) -> None:
    assert (await client.get("/nowhere")).status_code == 404
    assert (await client.post("/private")).status_code == 405


# -- 10. header only ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/private", SCOPED])
async def test_a_token_in_the_query_is_refused(
    client: httpx2.AsyncClient, mint: Minter, path: str
) -> None:
    token = mint.token()
    alone = await client.get(path, params={"access_token": token})
    assert alone.status_code == 400
    assert challenge(alone)["error"] == "invalid_request"
    both = await client.get(path, params={"access_token": token}, headers=bearer(token))
    assert both.status_code == 400


async def test_a_token_in_a_cookie_or_other_header_is_ignored(
    client: httpx2.AsyncClient, mint: Minter
) -> None:
    token = mint.token()
    response = await client.get(
        "/private", headers={"Cookie": f"access_token={token}", "X-Access-Token": token}
    )
    assert response.status_code == 401
    assert "error" not in challenge(response)


# -- 11. nothing secret in logs or answers --------------------------------------------------


async def test_no_token_appears_in_logs_or_answers(
    server: Server,
    issuer: Issuer,
    clock: FakeClock,
    mint: Minter,
    keys: list[Key],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = make_verifier(issuer, clock)
    now = int(clock.time())
    tokens = [
        mint.token(),
        mint.token(scope="openid"),
        mint.token(exp=now - 3600),
        mint.token(aud="other"),
        mint.token(iss="https://evil.example/"),
        mint.token(key=keys[2]),
        mint.token(headers={"typ": "id_token+jwt"}),
        mint.token(headers={"alg": "PS256"}),
        mint.token() + "x",
        "not-a-jwt-but-a-secret-value",
    ]
    transport = httpx2.ASGITransport(app=make_api(verifier))
    answers: list[httpx2.Response] = []
    async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
        for token in tokens:
            for path in ("/private", SCOPED):
                answers.append(await client.get(path, headers=bearer(token)))
                answers.append(await client.get(path, params={"access_token": token}))
                answers.append(await client.get(path, headers={"Authorization": f"Basic {token}"}))
        server.stop()  # an outage while a token is being checked
        clock.advance(60)
        answers.append(await client.get("/private", headers=bearer(mint.token(key=keys[1]))))
        tokens.append(mint.token(key=keys[1]))
    await verifier.aclose()

    assert any(record.name.startswith("pingapp.api") for record in caplog.records)
    # The test's own client logs the URLs it requests (http://t/...): not the app's lines.
    logged = "\n".join(
        record.getMessage() + (record.exc_text or "")
        for record in caplog.records
        if not record.getMessage().startswith("HTTP Request: GET http://t/")
    )
    assert {answer.status_code for answer in answers} <= {200, 400, 401, 403}
    for token in tokens:
        secret_parts = [token, *(part for part in token.split(".") if len(part) > 8)]
        for part in secret_parts:
            assert part not in logged
            for answer in answers:
                assert part not in answer.text
                assert part not in str(answer.headers)
