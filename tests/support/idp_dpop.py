"""DPoP (RFC 9449) at the embedded provider, as its tests drive it over HTTP: a code
for alice, proofs, the token and userinfo endpoints with proofs, what a refusal says,
and the `/clocked/idp` provider's clock."""

from __future__ import annotations

from typing import Any

import httpx2

from pingapp.dpop import DPoPKey, make_proof
from tests.idp.flow import Browser, callback_params, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT


def code_for(idp: dict[str, Any], client_id: str = "pingapp", **params: Any) -> tuple[str, str]:
    """Sign in as alice and consent: the authorization code and its PKCE verifier."""
    browser = Browser(idp["issuer"])
    page, _, verifier, _ = start(idp, browser, rp(client_id), **params)
    if page.status_code == 200 and "signin" in parse_page(page.text).ids:
        page = browser.sign_in(page)
    if page.status_code == 200 and "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page)
    return callback_params(page)["code"], verifier


def proof(idp: dict[str, Any], key: DPoPKey, path: str = "/token", **kwargs: Any) -> str:
    method = kwargs.pop("method", "POST")
    return make_proof(key, method, idp["issuer"] + path, **kwargs)


def post_token(idp: dict[str, Any], data: dict[str, str], *proofs: str) -> httpx2.Response:
    headers = [("DPoP", p) for p in proofs]
    return httpx2.post(idp["metadata"]["token_endpoint"], data=data, headers=headers)


def exchange(idp: dict[str, Any], code: str, verifier: str, *proofs: str, **extra: str):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": APP_REDIRECT,
        "client_id": "pingapp",
    }
    return post_token(idp, data | extra, *proofs)


def userinfo(idp: dict[str, Any], scheme: str, token: str, *proofs: str, method: str = "GET"):
    headers = [("Authorization", f"{scheme} {token}"), *(("DPoP", p) for p in proofs)]
    return httpx2.request(method, idp["metadata"]["userinfo_endpoint"], headers=headers)


def error_of(response: httpx2.Response, status: int = 400) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()["error"]


def challenge(response: httpx2.Response) -> str:
    assert response.status_code == 401, (response.status_code, response.text)
    return response.headers["www-authenticate"]


def clock_now(idp: dict[str, Any], seconds: float = 0) -> float:
    response = httpx2.post(f"{idp['base']}/_clock", params={"clock": "clocked", "seconds": seconds})
    return float(response.text)
