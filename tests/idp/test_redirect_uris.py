"""docs/security.md item 28: redirect URIs match the registered list exactly; an
unknown one gets an error page, never a redirect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pingapp.settings import EMBEDDED_DOCS_CLIENT_ID
from tests.idp.flow import callback_params, login, rp, start
from tests.idp.serve import APP_REDIRECT, OTHER_REDIRECT
from tests.support.idp_flow import CHALLENGE, authorize


def assert_error_page(response: httpx2.Response) -> None:
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
    response = httpx2.get(
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


# -- the API docs have a client of their own (docs/security.md item 30) -------------------------

DOCS_REDIRECTS = [
    "http://localhost:8000/api/docs/oauth2-redirect",
    "http://127.0.0.1:8000/api/docs/oauth2-redirect",
]


@pytest.mark.parametrize("uri", DOCS_REDIRECTS)
def test_the_apps_client_no_longer_accepts_the_docs_redirect(
    default_idp: dict[str, Any], uri: str
) -> None:
    assert_error_page(authorize(default_idp, client_id="pingapp", redirect_uri=uri))


def test_the_apps_client_keeps_its_callback(default_idp: dict[str, Any]) -> None:
    response = authorize(default_idp, client_id="pingapp", redirect_uri=APP_REDIRECT)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{default_idp['issuer']}/login?")


@pytest.mark.parametrize("uri", DOCS_REDIRECTS)
def test_the_docs_client_accepts_only_the_docs_redirect(
    default_idp: dict[str, Any], uri: str
) -> None:
    response = authorize(default_idp, client_id=EMBEDDED_DOCS_CLIENT_ID, redirect_uri=uri)
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"{default_idp['issuer']}/login?")


@pytest.mark.parametrize(
    "uri", [APP_REDIRECT, "http://localhost:3000/callback", "http://evil.example/"]
)
def test_the_docs_client_refuses_the_apps_callback(default_idp: dict[str, Any], uri: str) -> None:
    assert_error_page(authorize(default_idp, client_id=EMBEDDED_DOCS_CLIENT_ID, redirect_uri=uri))


def test_the_docs_client_requires_pkce(default_idp: dict[str, Any]) -> None:
    response = authorize(
        default_idp,
        client_id=EMBEDDED_DOCS_CLIENT_ID,
        redirect_uri=DOCS_REDIRECTS[0],
        code_challenge=None,
        code_challenge_method=None,
    )
    assert response.status_code == 302
    back = parse_qs(urlsplit(response.headers["location"]).query)
    assert back["error"] == ["invalid_request"]
    assert "code" not in back


def test_the_docs_client_is_public_and_refuses_a_secret(default_idp: dict[str, Any]) -> None:
    response = httpx2.post(
        default_idp["metadata"]["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "x", "code_verifier": "v" * 43},
        auth=(EMBEDDED_DOCS_CLIENT_ID, "any-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_sign_in_at_the_app_gives_no_silent_code_to_the_docs_client(
    default_idp: dict[str, Any],
) -> None:
    """The attack: a foreign page runs `prompt=none` for the docs' redirect URI in a
    browser signed in to the app. The docs client has no consent of its own."""
    result = login(default_idp)
    back, *_ = start(
        default_idp,
        result.browser,
        rp(EMBEDDED_DOCS_CLIENT_ID, redirect_uri=DOCS_REDIRECTS[0]),
        prompt="none",
    )
    params = callback_params(back)
    assert params["error"] == "consent_required"
    assert "code" not in params
