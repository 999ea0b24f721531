"""Sign-in with code + PKCE over real HTTP, tokens checked with PyJWT (RFC 9068, OIDC)."""

from __future__ import annotations

import time
from typing import Any

import httpx2

from tests.idp.flow import (
    FULL_SCOPE,
    Browser,
    callback_params,
    form_error,
    login,
    parse_page,
    rp,
    start,
    verify,
)
from tests.idp.serve import AUDIENCE


def test_discovery_names_every_endpoint_and_only_code_with_s256(idp: dict[str, Any]) -> None:
    meta = idp["metadata"]
    assert meta["issuer"] == idp["issuer"]
    for name, path in {
        "authorization_endpoint": "/authorize",
        "token_endpoint": "/token",
        "userinfo_endpoint": "/userinfo",
        "jwks_uri": "/.well-known/jwks.json",
        "end_session_endpoint": "/logout",
        "revocation_endpoint": "/revoke",
    }.items():
        assert meta[name] == idp["issuer"] + path
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "read:messages" in meta["scopes_supported"]


def test_jwks_publishes_public_rsa_keys_only(idp: dict[str, Any]) -> None:
    keys = httpx2.get(idp["metadata"]["jwks_uri"]).json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


def test_code_pkce_login_gives_rfc9068_access_token(idp: dict[str, Any]) -> None:
    before = int(time.time())
    result = login(idp)
    token = result.token
    assert token["token_type"].lower() == "bearer"
    assert set(token["scope"].split()) == set(FULL_SCOPE.split())
    claims = verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["iss"] == idp["issuer"]
    assert claims["sub"] == "alice"
    assert AUDIENCE in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["client_id"] == "pingapp"
    assert set(claims["scope"].split()) == set(FULL_SCOPE.split())
    assert before - 5 <= claims["iat"] <= time.time() + 5
    assert claims["exp"] - claims["iat"] == token["expires_in"] == 300
    assert len(claims["jti"]) >= 16
    assert claims["auth_time"] >= before - 5
    # a second login gets another jti
    other = login(idp, result.browser)
    again = verify(idp, other.token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert again["jti"] != claims["jti"]


def test_id_token_has_nonce_and_profile_claims(idp: dict[str, Any]) -> None:
    result = login(idp, user="bob")
    claims = verify(idp, result.token["id_token"], audience="pingapp", typ="JWT")
    assert claims["nonce"] == result.nonce
    assert claims["sub"] == "bob"
    assert claims["name"] == "Bob"
    assert claims["email"] == "bob@example.com"
    assert claims["picture"] == f"{idp['issuer']}/avatar/bob.svg"
    assert httpx2.get(claims["picture"]).headers["content-type"].startswith("image/svg+xml")


def test_id_token_without_profile_scopes_has_no_profile_claims(idp: dict[str, Any]) -> None:
    result = login(idp, client=rp(scope="openid read:messages"))
    claims = verify(idp, result.token["id_token"], audience="pingapp", typ="JWT")
    assert claims["sub"] == "alice"
    assert not {"name", "email", "picture"} & claims.keys()
    assert "refresh_token" not in result.token  # no offline_access, no refresh token


def test_resource_parameter_works_like_audience(idp: dict[str, Any]) -> None:
    result = login(idp, audience=None, resource=AUDIENCE)
    claims = verify(idp, result.token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["sub"] == "alice"


def test_userinfo_returns_the_profile(idp: dict[str, Any]) -> None:
    result = login(idp)
    response = httpx2.get(
        idp["metadata"]["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {result.token['access_token']}"},
    )
    assert response.status_code == 200
    assert response.json()["sub"] == "alice"
    assert response.json()["email"] == "alice@example.com"


def test_sign_in_page_is_labelled_and_lists_demo_users(default_idp: dict[str, Any]) -> None:
    idp = default_idp  # the built-in demo users, alice and bob
    page, *_ = start(idp, Browser(idp["issuer"]), rp())
    assert page.status_code == 200
    assert "development provider" in page.text
    assert "<code>alice</code> / <code>alice</code>" in page.text
    assert "<code>bob</code> / <code>bob</code>" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_wrong_password_is_refused_with_a_message(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp(), prompt="consent")
    refused = browser.sign_in(page, "alice", "wrong")
    assert refused.status_code == 401
    assert form_error(refused) == "Wrong user name or password."
    assert "idp_session" not in browser.http.cookies
    # the same page still works with the right password
    consent = browser.sign_in(refused, "alice", "alice")
    assert "consent-allow" in parse_page(consent.text).ids


def test_consent_lists_each_scope_and_unticking_removes_it(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    client = rp()
    # consent is remembered per user and client; prompt=consent asks again
    page, _, verifier, _ = start(idp, browser, client, prompt="consent")
    consent = browser.sign_in(page, "bob")
    ids = parse_page(consent.text).ids
    for name in ("scope-openid", "scope-profile", "scope-email", "scope-offline_access"):
        assert ids[name]["type"] == "checkbox"
    assert ids["scope-read-messages"]["value"] == "read:messages"
    back = browser.consent(consent, scopes=["profile", "email", "offline_access"])
    from tests.idp.flow import finish

    token = finish(idp, client, back, verifier)
    assert "read:messages" not in token["scope"].split()
    claims = verify(idp, token["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert "read:messages" not in claims["scope"].split()


def test_deny_returns_access_denied_with_state(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    page, state, *_ = start(idp, browser, rp(), prompt="consent")
    back = browser.consent(browser.sign_in(page, "bob"), allow=False)
    params = callback_params(back)
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert "code" not in params


def test_second_login_in_same_browser_asks_nothing(idp: dict[str, Any]) -> None:
    first = login(idp)
    back, *_ = start(idp, first.browser, rp())
    assert "code" in callback_params(back)


def test_prompt_login_asks_for_the_password_again(idp: dict[str, Any]) -> None:
    first = login(idp)
    page, *_ = start(idp, first.browser, rp(), prompt="login")
    assert page.status_code == 200
    assert "signin" in parse_page(page.text).ids
    back = first.browser.sign_in(page)
    assert "code" in callback_params(back)


def test_prompt_none_without_session_returns_login_required(idp: dict[str, Any]) -> None:
    back, state, *_ = start(idp, Browser(idp["issuer"]), rp(), prompt="none")
    params = callback_params(back)
    assert params == {"error": "login_required", "state": state, "iss": idp["issuer"]} | (
        {"error_description": params["error_description"]} if "error_description" in params else {}
    )


def test_prompt_none_with_session_but_new_scope_returns_consent_required(
    idp: dict[str, Any],
) -> None:
    first = login(idp, user="carol", client=rp(scope="openid profile"))
    back, *_ = start(idp, first.browser, rp(scope="openid profile email"), prompt="none")
    assert callback_params(back)["error"] == "consent_required"
    ok, *_ = start(idp, first.browser, rp(scope="openid profile"), prompt="none")
    assert "code" in callback_params(ok)


def test_login_without_audience_gives_a_token_for_userinfo_only(idp: dict[str, Any]) -> None:
    result = login(idp, audience=None)
    claims = verify(
        idp, result.token["access_token"], audience=f"{idp['issuer']}/userinfo", typ="at+jwt"
    )
    assert claims["aud"] == f"{idp['issuer']}/userinfo"


def test_session_cookie_is_httponly_lax_and_scoped_to_the_provider(idp: dict[str, Any]) -> None:
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp())
    form = parse_page(page.text)
    response = browser.http.post(
        form.action, data={**form.hidden, "username": "alice", "password": "alice"}
    )
    cookie = next(
        v for k, v in response.headers.multi_items() if k == "set-cookie" and "idp_session=" in v
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Path=/idp" in cookie


def test_max_age_exceeded_asks_for_the_password_again(idp: dict[str, Any]) -> None:
    first = login(idp)
    # max_age=0 is prompt=login (OIDC Core 3.1.2.1): no need to wait a second first
    page, *_ = start(idp, first.browser, rp(), max_age="0")
    assert "signin" in parse_page(page.text).ids
    fresh, *_ = start(idp, first.browser, rp(), max_age="3600")
    assert "code" in callback_params(fresh)
