"""SECURITY 49 against the app as deployed (`make prod`), in raw HTTP as an attacker
sends it: with a token bound to a key of their own (signed in at the embedded provider
with the API docs' public client), a DPoP proof dated 30 s ahead of the server's clock
(which no test can move) is refused: 401 with a DPoP challenge at the API, 400 at the
provider's token endpoint. A proof dated now passes both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from pingapp.devidp.config import DOCS_REDIRECT_PATH
from pingapp.dpop import DPoPKey, make_proof
from pingapp.settings import EMBEDDED_DOCS_CLIENT_ID
from pingapp.web.challenges import challenge_params
from tests.idp.flow import Browser, callback_params, parse_page, rp, start
from tests.support.app import PRIVATE_MESSAGE, RunningApp, start_app

AHEAD = 30  # seconds: far beyond the 5 s allowed, whatever the two clocks read


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp = tmp_path_factory.mktemp("prod-dpop")
    running = start_app("prod", tmp, env={"REFLEX_STATES_WORKDIR": str(tmp / "states")})
    yield running
    running.stop()


def signed_in_code(idp: dict[str, Any], redirect_uri: str) -> tuple[str, str]:
    """Alice signs in and consents, over HTTP: the code and its PKCE verifier."""
    browser = Browser(idp["issuer"])
    client = rp(EMBEDDED_DOCS_CLIENT_ID, scope="openid", redirect_uri=redirect_uri)
    page, _, verifier, _ = start(idp, browser, client)
    if page.status_code == 200 and "signin" in parse_page(page.text).ids:
        page = browser.sign_in(page)
    if page.status_code == 200 and "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page)
    return callback_params(page)["code"], verifier


def test_a_proof_dated_30_s_ahead_is_refused(app: RunningApp) -> None:
    metadata = httpx2.get(app.backend + "/idp/.well-known/openid-configuration").json()
    idp = {"base": app.backend, "issuer": metadata["issuer"], "metadata": metadata}
    origin = metadata["issuer"].removesuffix("/idp")  # the one port of `make prod`
    redirect_uri = origin + DOCS_REDIRECT_PATH
    code, verifier = signed_in_code(idp, redirect_uri)
    key = DPoPKey.generate()

    token_url = metadata["token_endpoint"]
    grant = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
        "client_id": EMBEDDED_DOCS_CLIENT_ID,
    }
    early = make_proof(key, "POST", token_url, now=time.time() + AHEAD)
    refused = httpx2.post(token_url, data=grant, headers={"DPoP": early})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_dpop_proof"
    answer = httpx2.post(
        token_url, data=grant, headers={"DPoP": make_proof(key, "POST", token_url)}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "DPoP"
    token = answer.json()["access_token"]

    # The proof names the API's URL as the app calls it (its own origin, then /api).
    htu = origin + "/api/private"

    def private(proof: str) -> httpx2.Response:
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        return httpx2.get(app.backend + "/api/private", headers=headers)

    response = private(make_proof(key, "GET", htu, access_token=token, now=time.time() + AHEAD))
    assert response.status_code == 401, response.text
    params = challenge_params(response, "dpop")
    assert params["error"] == "invalid_dpop_proof"
    assert "iat" in params["error_description"]
    assert response.json()["error"] == "invalid_dpop_proof"
    fresh = private(make_proof(key, "GET", htu, access_token=token))
    assert fresh.status_code == 200, fresh.headers.get("WWW-Authenticate")
    assert PRIVATE_MESSAGE in fresh.json()["message"]
