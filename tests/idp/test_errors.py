"""Bad requests get OAuth error responses (RFC 6749 sections 4.1.2.1 and 5.2, RFC 6750),
forms are CSRF-protected, and nothing a client sends causes a 500."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx2
import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.idp.flow import Browser, callback_params, login, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT, SECRET
from tests.support.idp_flow import CHALLENGE, authorize

FUZZ = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def redirected_error(response: httpx2.Response) -> dict[str, str]:
    params = callback_params(response)
    assert response.headers["location"].startswith(APP_REDIRECT + "?")
    assert "code" not in params
    return params


# -- authorization endpoint: errors go back to a verified redirect URI --------------


def test_missing_pkce_is_invalid_request(idp: dict[str, Any]) -> None:
    params = redirected_error(authorize(idp, code_challenge=None, code_challenge_method=None))
    assert params["error"] == "invalid_request"
    assert params["state"] == "s1"


def test_plain_pkce_is_refused(idp: dict[str, Any]) -> None:
    response = authorize(idp, code_challenge=CHALLENGE, code_challenge_method="plain")
    assert redirected_error(response)["error"] == "invalid_request"


def test_unsupported_response_type(idp: dict[str, Any]) -> None:
    assert redirected_error(authorize(idp, response_type="token"))["error"] == (
        "unsupported_response_type"
    )


def test_unknown_scope_is_invalid_scope(idp: dict[str, Any]) -> None:
    assert redirected_error(authorize(idp, scope="openid admin"))["error"] == "invalid_scope"


def test_no_scope_is_invalid_scope(idp: dict[str, Any]) -> None:
    assert redirected_error(authorize(idp, scope=None))["error"] == "invalid_scope"


def test_unknown_audience_is_invalid_target(idp: dict[str, Any]) -> None:
    response = authorize(idp, audience="urn:somebody:else")
    assert redirected_error(response)["error"] == "invalid_target"


def test_two_audiences_are_invalid_target(idp: dict[str, Any]) -> None:
    response = authorize(idp, audience="urn:pingapp:api", resource="urn:other:api")
    assert redirected_error(response)["error"] == "invalid_target"


def test_prompt_none_mixed_with_login_is_invalid_request(idp: dict[str, Any]) -> None:
    result = login(idp)
    back, *_ = start(idp, result.browser, rp(), prompt="none login")
    assert callback_params(back)["error"] == "invalid_request"


# -- token endpoint (RFC 6749 section 5.2) -------------------------------------------


def token_request(idp: dict[str, Any], data: dict[str, str], **kwargs: Any) -> httpx2.Response:
    return httpx2.post(idp["metadata"]["token_endpoint"], data=data, **kwargs)


def test_token_errors_are_json_and_not_cached(idp: dict[str, Any]) -> None:
    response = token_request(idp, {"client_id": "pingapp"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert response.headers["cache-control"] == "no-store"


def test_unknown_grant_type(idp: dict[str, Any]) -> None:
    response = token_request(idp, {"grant_type": "password", "client_id": "pingapp"})
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_code(idp: dict[str, Any]) -> None:
    data = {"grant_type": "authorization_code", "client_id": "pingapp"}
    assert token_request(idp, data).json()["error"] == "invalid_request"


def test_unknown_client_at_token_endpoint(idp: dict[str, Any]) -> None:
    data = {"grant_type": "authorization_code", "client_id": "nobody", "code": "x"}
    assert token_request(idp, data).json()["error"] == "invalid_client"


def test_confidential_client_with_wrong_secret_is_401(idp: dict[str, Any]) -> None:
    data = {"grant_type": "authorization_code", "code": "x", "redirect_uri": APP_REDIRECT}
    response = token_request(idp, data, auth=("confidential", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_confidential_client_cannot_act_as_public(idp: dict[str, Any]) -> None:
    data = {"grant_type": "authorization_code", "client_id": "confidential", "code": "x"}
    assert token_request(idp, data).json()["error"] == "invalid_client"


def test_confidential_client_with_secret_reaches_the_code_check(idp: dict[str, Any]) -> None:
    data = {"grant_type": "authorization_code", "code": "x", "redirect_uri": APP_REDIRECT}
    response = token_request(idp, data, auth=("confidential", SECRET))
    assert response.json()["error"] == "invalid_grant"


def test_get_on_token_endpoint_is_405(idp: dict[str, Any]) -> None:
    assert httpx2.get(idp["metadata"]["token_endpoint"]).status_code == 405


# -- userinfo (RFC 6750) ------------------------------------------------------------------


def test_userinfo_without_token_is_a_bare_bearer_challenge(idp: dict[str, Any]) -> None:
    response = httpx2.get(idp["metadata"]["userinfo_endpoint"])
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["www-authenticate"]


def test_userinfo_with_garbage_is_invalid_token(idp: dict[str, Any]) -> None:
    response = httpx2.get(
        idp["metadata"]["userinfo_endpoint"], headers={"Authorization": "Bearer nonsense"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_userinfo_refuses_an_id_token(idp: dict[str, Any]) -> None:
    id_token = login(idp).token["id_token"]
    response = httpx2.get(
        idp["metadata"]["userinfo_endpoint"], headers={"Authorization": f"Bearer {id_token}"}
    )
    assert response.status_code == 401


def test_userinfo_refuses_a_token_signed_by_another_key(idp: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = login(idp).token["access_token"]
    claims = jwt.decode(real, options={"verify_signature": False})
    header = jwt.get_unverified_header(real)
    forged = jwt.encode(
        claims, rsa.generate_private_key(65537, 2048), algorithm="RS256", headers=header
    )
    response = httpx2.get(
        idp["metadata"]["userinfo_endpoint"], headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401


# -- the sign-in and consent forms -----------------------------------------------------------


def test_sign_in_form_with_a_wrong_csrf_token_is_refused(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp())
    form = parse_page(page.text)
    response = browser.http.post(
        form.action,
        data={**form.hidden, "csrf": "forged", "username": "alice", "password": "alice"},
    )
    assert response.status_code == 403
    assert "idp_session" not in browser.http.cookies


def test_sign_in_form_posted_from_another_browser_is_refused(idp: dict[str, Any]) -> None:
    """Login CSRF: an attacker's form, submitted by the victim's browser, does nothing."""
    attacker = Browser(idp["issuer"])
    page, *_ = start(idp, attacker, rp())
    form = parse_page(page.text)
    victim = Browser(idp["issuer"])
    response = victim.http.post(
        form.action, data={**form.hidden, "username": "bob", "password": "bob"}
    )
    assert response.status_code == 403
    assert "idp_session" not in victim.http.cookies


def test_consent_form_cannot_be_used_twice(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp(), prompt="consent")
    consent = browser.sign_in(page, "bob")
    assert "code" in callback_params(browser.consent(consent))
    again = browser.consent(consent)
    assert again.status_code == 400
    assert "location" not in again.headers


def test_unknown_transaction_is_an_error_page(idp: dict[str, Any]) -> None:
    response = httpx2.get(f"{idp['issuer']}/login?tx=nope")
    assert response.status_code == 400
    assert 'id="idp-error"' in response.text


# -- nothing a client sends causes a 500 ------------------------------------------------------

text = st.text(max_size=40)
params = st.dictionaries(
    st.sampled_from(
        [
            "response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "prompt",
            "max_age", "code_challenge", "code_challenge_method", "audience", "resource",
            "grant_type", "code", "code_verifier", "refresh_token", "client_secret", "token",
            "token_type_hint", "id_token_hint", "post_logout_redirect_uri", "tx", "csrf",
        ]
    ),
    text,
    max_size=8,
)  # fmt: skip


@FUZZ
@given(path=st.sampled_from(["/authorize", "/logout", "/login", "/consent"]), query=params)
def test_any_query_is_answered_below_500(idp: dict[str, Any], path: str, query: dict) -> None:
    response = httpx2.get(f"{idp['issuer']}{path}?{urlencode(query)}")
    assert response.status_code < 500, response.text[:300]


@FUZZ
@given(
    path=st.sampled_from(["/token", "/revoke", "/userinfo", "/authorize", "/logout", "/login"]),
    form=params,
)
def test_any_form_is_answered_below_500(idp: dict[str, Any], path: str, form: dict) -> None:
    response = httpx2.post(f"{idp['issuer']}{path}", data=form)
    assert response.status_code < 500, response.text[:300]


@FUZZ
@given(
    header=st.one_of(
        st.sampled_from(["Bearer", "Bearer  x", "bearer x y", "Basic Og==", "Basic !!", "Bearer"]),
        # (httpx itself refuses a value with outer spaces, so none are sent)
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
            str.strip
        ),
    )
)
def test_any_authorization_header_is_answered_below_500(idp: dict[str, Any], header: str) -> None:
    response = httpx2.get(idp["metadata"]["userinfo_endpoint"], headers={"Authorization": header})
    assert response.status_code < 500
    response = httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Authorization": header},
    )
    assert response.status_code < 500
