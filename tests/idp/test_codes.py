"""docs/security.md item 27: authorization codes are single-use, bound, short-lived;
a replayed code revokes what it issued."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from pydantic import ValidationError

from pingapp.devidp.config import IdpSettings
from tests.idp.flow import Browser, callback_params, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT, SECRET


def code_for(idp: dict[str, Any], user: str = "alice") -> tuple[str, str]:
    """A fresh code and its PKCE verifier (signing in and consenting as needed)."""
    browser = Browser(idp["issuer"])
    page, _, verifier, _ = start(idp, browser, rp())
    page = browser.sign_in(page, user)
    if "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page)
    return callback_params(page)["code"], verifier


def exchange(
    idp: dict[str, Any], code: str, verifier: str | None, **fields: Any
) -> httpx2.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": APP_REDIRECT,
        "client_id": "pingapp",
        "code_verifier": verifier,
        **fields,
    }
    return httpx2.post(
        idp["metadata"]["token_endpoint"], data={k: v for k, v in data.items() if v is not None}
    )


def error_of(response: httpx2.Response) -> str:
    assert response.status_code in (400, 401), response.text
    return response.json()["error"]


def test_code_works_once(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    assert exchange(idp, code, verifier).status_code == 200
    assert error_of(exchange(idp, code, verifier)) == "invalid_grant"


def test_replayed_code_revokes_the_tokens_it_issued(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    tokens = exchange(idp, code, verifier).json()
    userinfo = idp["metadata"]["userinfo_endpoint"]
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx2.get(userinfo, headers=bearer).status_code == 200

    assert error_of(exchange(idp, code, verifier)) == "invalid_grant"

    refreshed = httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "pingapp",
        },
    )
    assert error_of(refreshed) == "invalid_grant"
    assert httpx2.get(userinfo, headers=bearer).status_code == 401


def test_code_is_bound_to_its_client(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    assert error_of(exchange(idp, code, verifier, client_id="other")) == "invalid_grant"
    # and it was burnt by the attempt: the rightful client cannot use it either
    assert error_of(exchange(idp, code, verifier)) == "invalid_grant"


def test_code_is_bound_to_its_client_even_with_a_valid_secret(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    response = exchange(idp, code, verifier, client_id="confidential", client_secret=SECRET)
    assert error_of(response) == "invalid_grant"


def test_code_is_bound_to_its_redirect_uri(idp: dict[str, Any]) -> None:
    code, verifier = code_for(idp)
    # registered for the same client, but not the one the code was issued for
    other = "http://localhost:3000/callback"
    assert error_of(exchange(idp, code, verifier, redirect_uri=other)) == "invalid_grant"


def test_code_is_bound_to_its_pkce_challenge(idp: dict[str, Any]) -> None:
    code, _ = code_for(idp)
    wrong = "x" * 64
    assert error_of(exchange(idp, code, wrong)) == "invalid_grant"


def test_code_without_verifier_is_refused(idp: dict[str, Any]) -> None:
    code, _ = code_for(idp)
    assert error_of(exchange(idp, code, None)) == "invalid_request"


def test_code_expires(clocked_idp: dict[str, Any]) -> None:
    code, verifier = code_for(clocked_idp)
    # The provider's clock moves past the code's 60 s; nothing waits.
    moved = httpx2.post(f"{clocked_idp['base']}/_clock", params={"clock": "clocked", "seconds": 61})
    assert moved.status_code == 200
    assert error_of(exchange(clocked_idp, code, verifier)) == "invalid_grant"


def test_a_code_works_until_its_lifetime_ends(clocked_idp: dict[str, Any]) -> None:
    code, verifier = code_for(clocked_idp, "bob")
    moved = httpx2.post(f"{clocked_idp['base']}/_clock", params={"clock": "clocked", "seconds": 59})
    assert moved.status_code == 200
    assert exchange(clocked_idp, code, verifier).status_code == 200


def test_code_lifetime_is_at_most_60_seconds() -> None:
    assert IdpSettings().code_ttl <= 60
    with pytest.raises(ValidationError):
        IdpSettings(code_ttl=61)
