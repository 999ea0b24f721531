"""Pushed authorization requests (RFC 9126): `/par`, then `/authorize` with only
`client_id` and `request_uri`; one use, short-lived, bound to the client; and the
mode that requires them (IDP_REQUIRE_PAR)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest

from tests.idp.flow import FULL_SCOPE, Browser, callback_params, parse_page, verify
from tests.idp.serve import APP_REDIRECT, OTHER_REDIRECT, SECRET
from tests.support.idp_flow import authorize_url, push, s256_challenge

PREFIX = "urn:ietf:params:oauth:request_uri:"


def sign_in_and_consent(browser: Browser, page: httpx2.Response, user: str) -> httpx2.Response:
    if page.status_code == 200 and "signin" in parse_page(page.text).ids:
        page = browser.sign_in(page, user)
    if page.status_code == 200 and "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page)
    return page


def exchange(idp: dict[str, Any], code: str, verifier: str, **extra: str) -> dict[str, Any]:
    response = httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_REDIRECT,
            "code_verifier": verifier,
            "client_id": "pingapp",
        }
        | extra,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refused_page(response: httpx2.Response, error: str) -> None:
    assert response.status_code == 400
    assert "location" not in response.headers  # no redirect to the client
    assert error in response.text


def test_discovery_names_the_par_endpoint(idp: dict[str, Any], par_idp: dict[str, Any]) -> None:
    meta = idp["metadata"]
    assert meta["pushed_authorization_request_endpoint"] == f"{idp['issuer']}/par"
    assert meta["require_pushed_authorization_requests"] is False
    assert par_idp["metadata"]["require_pushed_authorization_requests"] is True


def test_a_pushed_request_completes_the_code_flow(idp: dict[str, Any]) -> None:
    pushed, request, verifier = push(idp)
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert body["request_uri"].startswith(PREFIX)
    assert len(body["request_uri"]) > len(PREFIX) + 32
    assert body["expires_in"] == 60
    assert pushed.headers["cache-control"] == "no-store"

    browser = Browser(idp["issuer"])
    # parameters besides client_id and request_uri are ignored (RFC 9126 section 4)
    url = authorize_url(
        idp, "pingapp", body["request_uri"], redirect_uri=OTHER_REDIRECT, scope="openid", state="x"
    )
    back = sign_in_and_consent(browser, browser.open(url), "carol")
    assert back.headers["location"].startswith(f"{APP_REDIRECT}?")
    params = callback_params(back)
    assert params["state"] == request["state"]
    assert params["iss"] == idp["issuer"]
    token = exchange(idp, params["code"], verifier)
    assert set(token["scope"].split()) == set(FULL_SCOPE.split())
    claims = verify(idp, token["id_token"], audience="pingapp", typ="JWT")
    assert claims["nonce"] == request["nonce"]
    assert claims["sub"] == "carol"


def test_a_request_uri_works_once(idp: dict[str, Any]) -> None:
    pushed, *_ = push(idp)
    request_uri = pushed.json()["request_uri"]
    browser = Browser(idp["issuer"])
    first = browser.open(authorize_url(idp, "pingapp", request_uri))
    assert first.status_code == 200  # the sign-in page
    again = Browser(idp["issuer"]).open(authorize_url(idp, "pingapp", request_uri))
    refused_page(again, "invalid_request_uri")


def test_a_request_uri_of_another_client_is_refused_and_not_used_up(
    idp: dict[str, Any],
) -> None:
    pushed, *_ = push(idp)
    request_uri = pushed.json()["request_uri"]
    refused_page(
        Browser(idp["issuer"]).open(authorize_url(idp, "other", request_uri)),
        "invalid_request_uri",
    )
    refused_page(
        Browser(idp["issuer"]).open(authorize_url(idp, "", request_uri)), "invalid_request_uri"
    )
    mine = Browser(idp["issuer"]).open(authorize_url(idp, "pingapp", request_uri))
    assert "signin" in parse_page(mine.text).ids


@pytest.mark.parametrize("request_uri", [f"{PREFIX}never-pushed", "https://evil.example/r"])
def test_an_unknown_request_uri_is_refused(idp: dict[str, Any], request_uri: str) -> None:
    response = Browser(idp["issuer"]).open(authorize_url(idp, "pingapp", request_uri))
    refused_page(response, "invalid_request_uri")


def test_a_request_uri_expires(clocked_idp: dict[str, Any]) -> None:
    pushed, *_ = push(clocked_idp)
    request_uri = pushed.json()["request_uri"]
    moved = httpx2.post(
        f"{clocked_idp['base']}/_clock", params={"clock": "clocked", "seconds": "61"}
    )
    assert moved.status_code == 200
    response = Browser(clocked_idp["issuer"]).open(
        authorize_url(clocked_idp, "pingapp", request_uri)
    )
    refused_page(response, "expired")


def test_a_request_uri_just_before_expiry_works(clocked_idp: dict[str, Any]) -> None:
    pushed, *_ = push(clocked_idp)
    request_uri = pushed.json()["request_uri"]
    httpx2.post(f"{clocked_idp['base']}/_clock", params={"clock": "clocked", "seconds": "59"})
    response = Browser(clocked_idp["issuer"]).open(
        authorize_url(clocked_idp, "pingapp", request_uri)
    )
    assert "signin" in parse_page(response.text).ids


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uri": "http://127.0.0.1:3000/elsewhere"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"audience": "urn:unknown:api"}, "invalid_target"),
        ({"request_uri": f"{PREFIX}nested"}, "invalid_request"),
        ({"prompt": "none login"}, "invalid_request"),
    ],
)
def test_a_bad_pushed_request_is_refused_with_json(
    idp: dict[str, Any], overrides: dict[str, Any], error: str
) -> None:
    response, *_ = push(idp, **overrides)
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.json()["error"] == error


def test_pushing_needs_a_known_client_authenticated_as_at_the_token_endpoint(
    idp: dict[str, Any],
) -> None:
    unknown, *_ = push(idp, "nobody")
    assert unknown.status_code in (400, 401)  # as at /token (RFC 6749 section 5.2)
    assert unknown.json()["error"] == "invalid_client"
    # a confidential client without its secret, or with a wrong one
    bare, *_ = push(idp, "confidential")
    assert bare.json()["error"] == "invalid_client"
    wrong, *_ = push(idp, "confidential", client_secret="guess")
    assert wrong.json()["error"] == "invalid_client"
    # HTTP Basic with the secret; the client_id then need not be in the body
    basic, *_ = push(idp, "confidential", client_id=None, auth=("confidential", SECRET))
    assert basic.status_code == 201, basic.text
    # nor may the body name another client than the one authenticated
    mixed, *_ = push(idp, "confidential", client_id="pingapp", auth=("confidential", SECRET))
    assert mixed.status_code == 400
    assert mixed.json()["error"] == "invalid_request"


def test_the_secret_is_not_kept_with_the_pushed_request(idp: dict[str, Any]) -> None:
    pushed, _, verifier = push(idp, "confidential", client_secret=SECRET)
    assert pushed.status_code == 201, pushed.text
    browser = Browser(idp["issuer"])
    page = browser.open(authorize_url(idp, "confidential", pushed.json()["request_uri"]))
    back = sign_in_and_consent(browser, page, "alice")
    assert "client_secret" not in back.headers["location"]
    exchange(
        idp,
        callback_params(back)["code"],
        verifier,
        client_id="confidential",
        client_secret=SECRET,
    )


def test_the_par_endpoint_takes_only_post(idp: dict[str, Any]) -> None:
    endpoint = idp["metadata"]["pushed_authorization_request_endpoint"]
    assert httpx2.get(endpoint, params={"client_id": "pingapp"}).status_code == 405


def test_required_par_refuses_a_plain_authorization_request(par_idp: dict[str, Any]) -> None:
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "client_id": "pingapp",
            "response_type": "code",
            "redirect_uri": APP_REDIRECT,
            "scope": "openid",
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    response = Browser(par_idp["issuer"]).open(
        f"{par_idp['metadata']['authorization_endpoint']}?{query}"
    )
    refused_page(response, "pushed authorization requests")


def test_required_par_accepts_a_pushed_request(par_idp: dict[str, Any]) -> None:
    pushed, request, verifier = push(par_idp)
    assert pushed.status_code == 201
    browser = Browser(par_idp["issuer"])
    page = browser.open(authorize_url(par_idp, "pingapp", pushed.json()["request_uri"]))
    back = sign_in_and_consent(browser, page, "alice")
    params = callback_params(back)
    assert params["state"] == request["state"]
    assert exchange(par_idp, params["code"], verifier)["token_type"].lower() == "bearer"
