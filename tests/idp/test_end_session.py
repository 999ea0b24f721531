"""RP-initiated logout: the provider session ends; redirects only to registered URIs."""

from __future__ import annotations

from typing import Any

from tests.idp.flow import Browser, callback_params, login, parse_page, rp, start
from tests.idp.serve import APP_LOGOUT


def signed_in(idp: dict[str, Any], browser: Browser) -> bool:
    back, *_ = start(idp, browser, rp(), prompt="none")
    return "code" in callback_params(back)


def test_logout_with_hint_returns_to_registered_uri_and_ends_the_session(
    idp: dict[str, Any],
) -> None:
    result = login(idp)
    assert signed_in(idp, result.browser)
    response = result.browser.http.get(
        idp["metadata"]["end_session_endpoint"],
        params={
            "id_token_hint": result.token["id_token"],
            "post_logout_redirect_uri": APP_LOGOUT,
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{APP_LOGOUT}?state=bye"
    assert not signed_in(idp, result.browser)


def test_unregistered_post_logout_uri_is_not_followed(idp: dict[str, Any]) -> None:
    result = login(idp)
    response = result.browser.http.get(
        idp["metadata"]["end_session_endpoint"],
        params={
            "id_token_hint": result.token["id_token"],
            "post_logout_redirect_uri": "http://evil.example/",
        },
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'id="idp-signed-out"' in response.text
    assert not signed_in(idp, result.browser)


def test_logout_without_hint_asks_first(idp: dict[str, Any]) -> None:
    result = login(idp)
    page = result.browser.http.get(
        idp["metadata"]["end_session_endpoint"], params={"post_logout_redirect_uri": APP_LOGOUT}
    )
    assert page.status_code == 200
    assert "logout-confirm" in parse_page(page.text).ids
    assert signed_in(idp, result.browser)  # not yet
    done = result.browser.submit(page, {})
    assert 'id="idp-signed-out"' in done.text
    assert "location" not in done.headers  # no hint: no redirect
    assert not signed_in(idp, result.browser)


def test_forged_logout_post_is_only_asked_again(idp: dict[str, Any]) -> None:
    result = login(idp)
    forged = result.browser.http.post(
        idp["metadata"]["end_session_endpoint"], data={"csrf": "guessed"}
    )
    assert "logout-confirm" in parse_page(forged.text).ids
    assert signed_in(idp, result.browser)


def test_logout_confirmation_from_another_browser_does_nothing(idp: dict[str, Any]) -> None:
    victim = login(idp)
    attacker = Browser(idp["issuer"])
    page = attacker.http.get(idp["metadata"]["end_session_endpoint"])
    fields = parse_page(page.text).hidden
    forged = victim.browser.http.post(idp["metadata"]["end_session_endpoint"], data=fields)
    assert "logout-confirm" in parse_page(forged.text).ids
    assert signed_in(idp, victim.browser)


def test_garbage_hint_gets_an_error_page(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    response = browser.http.get(
        idp["metadata"]["end_session_endpoint"],
        params={"id_token_hint": "not.a.jwt", "post_logout_redirect_uri": APP_LOGOUT},
    )
    assert response.status_code == 400
    assert "location" not in response.headers
