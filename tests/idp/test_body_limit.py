"""docs/security.md item 50: the provider refuses a request body over 64 KiB with 413 before
parsing it, at every endpoint that takes a form, over HTTP; normal forms still work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from pingapp.web.bodylimit import MAX_BODY_BYTES
from tests.idp.flow import Browser, callback_params, login, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT

MIB = 1024 * 1024
FORM = {"content-type": "application/x-www-form-urlencoded"}


def chunked(total: int, piece: int = 16 * 1024) -> Iterator[bytes]:
    """A form body of `total` bytes sent without a length (chunked)."""
    yield b"grant_type=authorization_code&code="
    for _ in range(total // piece):
        yield b"x" * piece


def too_large(response: httpx2.Response) -> None:
    assert response.status_code == 413, (response.status_code, response.text[:200])
    assert str(MAX_BODY_BYTES) in response.text


@pytest.mark.parametrize("path", ["/token", "/par", "/revoke", "/login", "/consent", "/logout"])
def test_a_mebibyte_form_is_refused_with_413(idp: dict[str, Any], path: str) -> None:
    url = idp["issuer"] + path
    too_large(httpx2.post(url, data={"client_id": "pingapp", "padding": "x" * MIB}))
    too_large(httpx2.post(url, content=chunked(MIB), headers=FORM))


def test_a_form_just_under_the_limit_is_read(idp: dict[str, Any]) -> None:
    """The limit is on the body, not on the form: a large one within it is parsed as usual
    (the token endpoint's error, not a 413)."""
    data = {"grant_type": "authorization_code", "code": "x" * (MAX_BODY_BYTES - 100)}
    response = httpx2.post(idp["metadata"]["token_endpoint"], data={**data, "client_id": "pingapp"})
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_an_oversized_sign_in_form_is_refused_and_the_page_still_works(
    idp: dict[str, Any],
) -> None:
    browser = Browser(idp["issuer"])
    client = rp()
    page, _, verifier, _ = start(idp, browser, client)
    form = parse_page(page.text)
    assert "signin" in form.ids
    padded = {**form.hidden, "username": "alice", "password": "alice", "x": "y" * MIB}
    too_large(browser.http.post(form.action, data=padded))
    # the same form, of a normal size, signs in; the code is exchanged at /token
    page = browser.sign_in(page)
    if page.status_code == 200 and "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page)
    code = callback_params(page)["code"]
    token = httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": APP_REDIRECT,
            "client_id": "pingapp",
        },
    )
    assert token.status_code == 200, token.text
    assert "access_token" in token.json()


def test_an_oversized_token_request_leaves_the_flow_working(idp: dict[str, Any]) -> None:
    too_large(
        httpx2.post(idp["metadata"]["token_endpoint"], data={"grant_type": "x", "p": "x" * MIB})
    )
    assert "access_token" in login(idp).token
