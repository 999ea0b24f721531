"""RP-initiated logout: the provider session ends; redirects only to registered URIs."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from tests.idp.flow import Browser, callback_params, login, parse_page, rp, start
from tests.idp.serve import APP_LOGOUT, OTHER_REDIRECT


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


# -- docs/security.md item 35: no prompt only when an ID token names the signed-in user -----------


def logout(browser: Browser, idp: dict[str, Any], **params: str) -> httpx2.Response:
    return browser.http.get(idp["metadata"]["end_session_endpoint"], params=params)


def asks(response: httpx2.Response) -> bool:
    return response.status_code == 200 and "logout-confirm" in parse_page(response.text).ids


def test_anothers_id_token_does_not_sign_the_victim_out(idp: dict[str, Any]) -> None:
    """Logout CSRF: the attacker's own, valid ID token in a link the victim opens."""
    victim = login(idp)
    attacker = login(idp, user="bob")
    response = logout(
        victim.browser,
        idp,
        id_token_hint=attacker.token["id_token"],
        post_logout_redirect_uri=APP_LOGOUT,
        state="bye",
    )
    assert asks(response)
    assert "location" not in response.headers
    assert signed_in(idp, victim.browser)
    assert signed_in(idp, attacker.browser)


def test_a_logout_hint_alone_never_skips_the_question(idp: dict[str, Any]) -> None:
    """`client_id=pingapp&logout_hint=alice` names the signed-in user, but any page can
    write that link: only an ID token proves the request comes from her client."""
    result = login(idp)
    response = logout(
        result.browser,
        idp,
        client_id="pingapp",
        logout_hint="alice",
        post_logout_redirect_uri=APP_LOGOUT,
        state="bye",
    )
    assert asks(response)
    assert "location" not in response.headers
    assert signed_in(idp, result.browser)
    # Answered in this browser, it signs out and goes back where the client asked.
    done = result.browser.submit(response, {})
    assert done.status_code == 302
    assert done.headers["location"] == f"{APP_LOGOUT}?state=bye"
    assert not signed_in(idp, result.browser)


def test_an_id_token_and_a_logout_hint_of_the_signed_in_user_sign_out_without_asking(
    idp: dict[str, Any],
) -> None:
    result = login(idp)
    response = logout(
        result.browser,
        idp,
        id_token_hint=result.token["id_token"],
        logout_hint="alice",
        post_logout_redirect_uri=APP_LOGOUT,
        state="bye",
    )
    assert response.status_code == 302
    assert response.headers["location"] == f"{APP_LOGOUT}?state=bye"
    assert not signed_in(idp, result.browser)


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "pingapp", "logout_hint": "alice"},  # the user, but no proof
        {"client_id": "pingapp", "logout_hint": "bob"},  # another user
        {"client_id": "pingapp", "logout_hint": "Alice"},  # not the same sub
        {"client_id": "pingapp", "logout_hint": ""},
        {"client_id": "pingapp"},  # no hint at all
        {"logout_hint": "alice"},  # no client
    ],
)
def test_a_hint_that_does_not_name_the_signed_in_user_asks(
    idp: dict[str, Any], params: dict[str, str]
) -> None:
    result = login(idp)
    response = logout(result.browser, idp, post_logout_redirect_uri=APP_LOGOUT, **params)
    assert asks(response)
    assert signed_in(idp, result.browser)


def test_an_id_token_of_the_user_with_a_logout_hint_of_another_asks(idp: dict[str, Any]) -> None:
    result = login(idp)
    response = logout(
        result.browser, idp, id_token_hint=result.token["id_token"], logout_hint="bob"
    )
    assert asks(response)
    assert signed_in(idp, result.browser)


def test_a_confirmation_form_expires(clocked_idp: dict[str, Any]) -> None:
    """The form's token is derived from the browser's cookie and the time (nothing is
    stored for it): after two transaction lifetimes it is only asked again."""
    result = login(clocked_idp)
    page = logout(result.browser, clocked_idp, client_id="pingapp", logout_hint="alice")
    assert asks(page)
    httpx2.post(
        f"{clocked_idp['base']}/_clock", params={"clock": "clocked", "seconds": 2 * 600 + 1}
    ).raise_for_status()
    again = result.browser.submit(page, {})
    assert asks(again)
    assert signed_in(clocked_idp, result.browser)
    done = result.browser.submit(again, {})  # the new form works
    assert 'id="idp-signed-out"' in done.text
    assert not signed_in(clocked_idp, result.browser)


def test_a_hint_without_a_provider_session_asks(idp: dict[str, Any]) -> None:
    response = logout(
        Browser(idp["issuer"]),
        idp,
        client_id="pingapp",
        logout_hint="alice",
        post_logout_redirect_uri=APP_LOGOUT,
    )
    assert asks(response)


def test_confirmed_logout_with_client_id_returns_to_the_registered_uri(
    idp: dict[str, Any],
) -> None:
    result = login(idp)
    page = logout(
        result.browser,
        idp,
        client_id="pingapp",
        logout_hint="bob",
        post_logout_redirect_uri=APP_LOGOUT,
        state="s",
    )
    assert asks(page)
    done = result.browser.submit(page, {})
    assert done.status_code == 302
    assert done.headers["location"] == f"{APP_LOGOUT}?state=s"
    assert not signed_in(idp, result.browser)


@pytest.mark.parametrize(
    ("client_id", "uri"),
    [
        ("pingapp", "http://evil.example/"),
        ("pingapp", APP_LOGOUT + "x"),
        ("pingapp", OTHER_REDIRECT),
        ("other", APP_LOGOUT),  # registered, but for another client
    ],
)
def test_client_id_with_an_unregistered_post_logout_uri_is_not_followed(
    idp: dict[str, Any], client_id: str, uri: str
) -> None:
    result = login(idp)
    page = logout(
        result.browser, idp, client_id=client_id, logout_hint="alice", post_logout_redirect_uri=uri
    )
    assert asks(page)
    response = result.browser.submit(page, {})
    assert response.status_code == 200
    assert "location" not in response.headers
    assert 'id="idp-signed-out"' in response.text
    assert not signed_in(idp, result.browser)


def test_unknown_client_id_gets_an_error_page(idp: dict[str, Any]) -> None:
    result = login(idp)
    response = logout(
        result.browser,
        idp,
        client_id="nobody",
        logout_hint="alice",
        post_logout_redirect_uri=APP_LOGOUT,
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert signed_in(idp, result.browser)


def test_client_id_that_is_not_the_id_tokens_audience_gets_an_error_page(
    idp: dict[str, Any],
) -> None:
    result = login(idp)
    response = logout(
        result.browser, idp, client_id="other", id_token_hint=result.token["id_token"]
    )
    assert response.status_code == 400
    assert signed_in(idp, result.browser)


def test_discovery_says_which_logout_is_supported(idp: dict[str, Any]) -> None:
    meta = idp["metadata"]
    assert meta["end_session_endpoint"] == f"{idp['issuer']}/logout"
    assert meta["frontchannel_logout_supported"] is False
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
