"""SECURITY.md item 28: redirect URIs match the registered list exactly; an
unknown one gets an error page, never a redirect."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.idp.serve import APP_REDIRECT, OTHER_REDIRECT

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def authorize(idp: dict[str, Any], **params: str | None) -> httpx.Response:
    query = {
        "response_type": "code",
        "client_id": "pingapp",
        "redirect_uri": APP_REDIRECT,
        "scope": "openid",
        "state": "s1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        **params,
    }
    query = {k: v for k, v in query.items() if v is not None}
    return httpx.get(f"{idp['metadata']['authorization_endpoint']}?{urlencode(query)}")


def assert_error_page(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text[:300]
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert 'id="idp-error"' in response.text


def test_the_registered_uri_is_accepted(idp: dict[str, Any]) -> None:
    # (no session: the sign-in page; a rejected redirect URI would be an error page)
    response = authorize(idp)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{idp['issuer']}/login?")


@pytest.mark.parametrize(
    "uri",
    [
        APP_REDIRECT + "/",
        APP_REDIRECT + "?next=/",
        APP_REDIRECT + "#x",
        APP_REDIRECT.upper(),
        APP_REDIRECT.replace("http://", "https://"),
        APP_REDIRECT.replace(":3000", ":3001"),
        APP_REDIRECT.replace("/callback", "/callback/../evil"),
        APP_REDIRECT.replace("127.0.0.1", "127.0.0.1.evil.example"),
        "http://evil.example/callback",
        "javascript:alert(1)",
        OTHER_REDIRECT,  # registered, but for another client
    ],
)
def test_unregistered_redirect_uri_gets_an_error_page(idp: dict[str, Any], uri: str) -> None:
    assert_error_page(authorize(idp, redirect_uri=uri))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(suffix=st.text(min_size=1, max_size=12))
def test_any_change_to_the_uri_is_refused(idp: dict[str, Any], suffix: str) -> None:
    assert_error_page(authorize(idp, redirect_uri=APP_REDIRECT + suffix))


def test_missing_redirect_uri_gets_an_error_page(idp: dict[str, Any]) -> None:
    assert_error_page(authorize(idp, redirect_uri=None))


def test_unknown_client_gets_an_error_page(idp: dict[str, Any]) -> None:
    assert_error_page(authorize(idp, client_id="nobody"))


def test_missing_client_gets_an_error_page(idp: dict[str, Any]) -> None:
    assert_error_page(authorize(idp, client_id=None))


def test_bad_response_type_with_unknown_uri_is_not_redirected(idp: dict[str, Any]) -> None:
    assert_error_page(authorize(idp, response_type="token", redirect_uri="http://evil.example/"))


def test_repeated_redirect_uri_gets_an_error_page(idp: dict[str, Any]) -> None:
    url = idp["metadata"]["authorization_endpoint"]
    response = httpx.get(
        url,
        params=[
            ("response_type", "code"),
            ("client_id", "pingapp"),
            ("redirect_uri", APP_REDIRECT),
            ("redirect_uri", "http://evil.example/callback"),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    assert_error_page(response)
