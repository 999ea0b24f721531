"""RFC 9207 `iss` in every authorization response, and what step-up (RFC 9470) needs
from the provider: `max_age` and `prompt=login` ask for the password again, and
`auth_time` is in ID and access tokens. Time moves on the `/clocked/idp` provider's
clock, so no test waits."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.idp.flow import Browser, callback_params, finish, login, parse_page, rp, start, verify
from tests.idp.serve import AUDIENCE
from tests.support.idp_flow import authorize_url, push


def move_clock(idp: dict[str, Any], seconds: int) -> float:
    moved = httpx2.post(
        f"{idp['base']}/_clock", params={"clock": "clocked", "seconds": str(seconds)}
    )
    return float(moved.text)


def token_times(idp: dict[str, Any], token: dict[str, Any]) -> tuple[int, int]:
    """`auth_time` of the ID token and of the access token."""
    id_claims = verify(idp, token["id_token"], audience="pingapp", typ="JWT")
    access = verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    return id_claims["auth_time"], access["auth_time"]


def test_discovery_says_iss_is_in_authorization_responses(idp: dict[str, Any]) -> None:
    assert idp["metadata"]["authorization_response_iss_parameter_supported"] is True


def test_iss_in_a_successful_authorization_response(idp: dict[str, Any]) -> None:
    first = login(idp)
    back, state, *_ = start(idp, first.browser, rp())
    params = callback_params(back)
    assert "code" in params
    assert params["state"] == state
    assert params["iss"] == idp["issuer"]
    assert back.headers["location"].count("iss=") == 1


def test_iss_in_error_responses(idp: dict[str, Any]) -> None:
    # the user says no
    browser = Browser(idp["issuer"])
    page, state, *_ = start(idp, browser, rp(), prompt="consent")
    page = browser.sign_in(page, "bob")
    denied = callback_params(browser.consent(page, allow=False))
    assert denied["error"] == "access_denied"
    assert denied["iss"] == idp["issuer"]
    assert denied["state"] == state
    # the request is wrong, once the redirect URI is known to be the client's
    bad, *_ = start(idp, Browser(idp["issuer"]), rp(scope="openid no:such-scope"))
    assert callback_params(bad)["error"] == "invalid_scope"
    assert callback_params(bad)["iss"] == idp["issuer"]
    # no session for prompt=none
    none, *_ = start(idp, Browser(idp["issuer"]), rp(), prompt="none")
    assert callback_params(none)["iss"] == idp["issuer"]


def test_auth_time_and_amr_are_in_access_tokens(idp: dict[str, Any]) -> None:
    token = login(idp).token
    id_time, access_time = token_times(idp, token)
    assert id_time == access_time
    access = verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert access["amr"] == ["pwd"]


def test_max_age_exceeded_signs_in_again_and_moves_auth_time(clocked_idp: dict[str, Any]) -> None:
    first = login(clocked_idp)
    signed_in_at, _ = token_times(clocked_idp, first.token)
    sid = verify(clocked_idp, first.token["id_token"], audience="pingapp", typ="JWT")["sid"]

    # recent enough: no password
    fresh, *_ = start(clocked_idp, first.browser, rp(), max_age="60")
    assert "code" in callback_params(fresh)

    now = move_clock(clocked_idp, 100)
    page, _, verifier, _ = start(clocked_idp, first.browser, first.client, max_age="60")
    assert "signin" in parse_page(page.text).ids
    back = first.browser.sign_in(page)
    token = finish(clocked_idp, first.client, back, verifier)
    assert token_times(clocked_idp, token) == (int(now), int(now))
    assert int(now) == signed_in_at + 100
    # the same provider session: step-up does not end it
    claims = verify(clocked_idp, token["id_token"], audience="pingapp", typ="JWT")
    assert claims["sid"] == sid

    # a longer max_age is satisfied by the new sign-in
    move_clock(clocked_idp, 30)
    ok, *_ = start(clocked_idp, first.browser, rp(), max_age="60")
    assert "code" in callback_params(ok)


def test_prompt_login_signs_in_again_and_moves_auth_time(clocked_idp: dict[str, Any]) -> None:
    first = login(clocked_idp)
    now = move_clock(clocked_idp, 5)
    page, _, verifier, _ = start(clocked_idp, first.browser, first.client, prompt="login")
    assert "signin" in parse_page(page.text).ids
    token = finish(clocked_idp, first.client, first.browser.sign_in(page), verifier)
    assert token_times(clocked_idp, token) == (int(now), int(now))


def test_max_age_zero_asks_at_once(clocked_idp: dict[str, Any]) -> None:
    first = login(clocked_idp)
    page, *_ = start(clocked_idp, first.browser, rp(), max_age="0")
    assert "signin" in parse_page(page.text).ids


def test_max_age_in_a_pushed_request(idp: dict[str, Any]) -> None:
    first = login(idp)
    pushed, *_ = push(idp, max_age="0")
    page = first.browser.open(authorize_url(idp, "pingapp", pushed.json()["request_uri"]))
    assert "signin" in parse_page(page.text).ids
