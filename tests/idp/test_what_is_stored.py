"""What the provider keeps, seen in its store over HTTP (`/sealed/idp`, `GET /_store`).

docs/security.md item 38: no anonymous request creates a record; a flood of random values
at every endpoint leaves the store's size unchanged. And what a sign-in in progress
keeps is hashed: the transaction id and the browser cookie only as digests, the form
token (CSRF) not at all; the browser holds the raw values.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx2

from pingapp.devidp.interaction import BROWSER_COOKIE
from pingapp.devidp.par import REQUEST_URI_PREFIX
from pingapp.dpop import DPoPKey, make_proof
from tests.idp.flow import Browser, callback_params, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT, SECRET

#: Random values per kind of request.
FLOOD = 12


def store(idp: dict[str, Any]) -> dict[str, Any]:
    return httpx2.get(f"{idp['base']}/_store").json()


def junk() -> str:
    return secrets.token_urlsafe(24)


def flood(idp: dict[str, Any]) -> None:
    """Anonymous requests with random values at every endpoint, each answered below 500."""
    issuer = idp["issuer"]
    key = DPoPKey.generate()
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    for _ in range(FLOOD):
        cookies = {BROWSER_COOKIE: junk() + junk(), "idp_session": junk()}
        http = httpx2.Client(cookies=cookies, timeout=10)
        answers = [
            # authorization requests authlib refuses
            http.get(f"{issuer}/authorize", params={"client_id": junk(), "state": junk()}),
            http.get(
                f"{issuer}/authorize",
                params={
                    "client_id": "pingapp",
                    "response_type": "code",
                    "redirect_uri": f"http://127.0.0.1:3000/{junk()}",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            ),
            http.get(
                f"{issuer}/authorize",
                params={
                    "client_id": "pingapp",
                    "response_type": "code",
                    "redirect_uri": APP_REDIRECT,
                    "scope": f"openid {junk()}",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            ),
            http.get(
                f"{issuer}/authorize",
                params={"client_id": "pingapp", "request_uri": REQUEST_URI_PREFIX + junk()},
            ),
            # pushed requests: no client, a wrong secret, a bad request
            http.post(f"{issuer}/par", data={"response_type": "code", "x": junk()}),
            http.post(
                f"{issuer}/par",
                data={"client_id": "confidential", "client_secret": junk(), "scope": "openid"},
            ),
            http.post(
                f"{issuer}/par",
                data={"client_id": "pingapp", "response_type": "code", "redirect_uri": junk()},
            ),
            # sign-in and consent pages without a transaction, or with a random one
            http.get(f"{issuer}/login"),
            http.get(f"{issuer}/login", params={"tx": junk()}),
            http.post(
                f"{issuer}/login",
                data={"tx": junk(), "csrf": junk(), "username": "alice", "password": junk()},
            ),
            http.get(f"{issuer}/consent", params={"tx": junk()}),
            http.post(
                f"{issuer}/consent", data={"tx": junk(), "csrf": junk(), "decision": "allow"}
            ),
            # sign-out with no session: the question, a forged answer, a bad hint
            http.get(f"{issuer}/logout"),
            http.get(f"{issuer}/logout", params={"client_id": "pingapp", "logout_hint": junk()}),
            http.post(f"{issuer}/logout", data={"csrf": junk()}),
            http.get(f"{issuer}/logout", params={"id_token_hint": junk()}),
            # tokens: random codes and refresh tokens, with a valid DPoP proof of a key
            # of the sender's own each time
            http.post(
                f"{issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": junk(),
                    "code_verifier": junk() + junk(),
                    "redirect_uri": APP_REDIRECT,
                    "client_id": "pingapp",
                },
                headers={"DPoP": make_proof(key, "POST", f"{issuer}/token")},
            ),
            http.post(
                f"{issuer}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": junk(),
                    "client_id": "pingapp",
                },
                headers={"DPoP": make_proof(key, "POST", f"{issuer}/token")},
            ),
            http.post(
                f"{issuer}/token",
                data={"grant_type": "authorization_code", "code": junk()},
                auth=("confidential", SECRET),
                headers={"DPoP": make_proof(key, "POST", f"{issuer}/token")},
            ),
            http.post(f"{issuer}/revoke", data={"token": junk(), "client_id": "pingapp"}),
            http.get(f"{issuer}/userinfo", headers={"Authorization": f"Bearer {junk()}"}),
            http.get(
                f"{issuer}/userinfo",
                headers={
                    "Authorization": f"DPoP {junk()}",
                    "DPoP": make_proof(key, "GET", f"{issuer}/userinfo"),
                },
            ),
            http.get(f"{issuer}/avatar/{junk()}.svg"),
        ]
        http.close()
        assert all(answer.status_code < 500 for answer in answers), [
            (a.request.url.path, a.status_code) for a in answers if a.status_code >= 500
        ]


def test_a_flood_of_anonymous_requests_stores_nothing(sealed_idp: dict[str, Any]) -> None:
    before = store(sealed_idp)
    flood(sealed_idp)
    after = store(sealed_idp)
    assert after["size"] == before["size"], set(after["dump"]) - set(before["dump"])


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_a_sign_in_in_progress_is_kept_as_digests(sealed_idp: dict[str, Any]) -> None:
    browser = Browser(sealed_idp["issuer"])
    page, *_ = start(sealed_idp, browser, rp())
    hidden = parse_page(page.text).hidden
    tx, csrf = hidden["tx"], hidden["csrf"]
    bid = browser.http.cookies[BROWSER_COOKIE]
    dump = " ".join(store(sealed_idp)["dump"])
    for raw in (tx, csrf, bid):
        assert raw not in dump
    assert f"tx:{digest(tx)} " in dump  # the transaction, under its id's digest
    assert digest(bid) in dump  # bound to the browser by the cookie's digest

    # the raw values the browser holds are what signs in; the transaction is used up
    back = browser.sign_in(page)
    if back.status_code == 200 and "consent-allow" in parse_page(back.text).ids:
        back = browser.consent(back)
    assert "code" in callback_params(back)
    session = browser.http.cookies["idp_session"]
    dump = " ".join(store(sealed_idp)["dump"])
    assert f"tx:{digest(tx)} " not in dump
    assert session not in dump
    assert f"sess:{digest(session)} " in dump


def test_the_form_token_is_this_browsers_own(sealed_idp: dict[str, Any]) -> None:
    """Two browsers at the same transaction's page: only its own browser's token works,
    and another browser cannot even open it."""
    browser = Browser(sealed_idp["issuer"])
    page, *_ = start(sealed_idp, browser, rp())
    hidden = parse_page(page.text).hidden
    intruder = Browser(sealed_idp["issuer"])
    intruder.http.get(f"{sealed_idp['issuer']}/logout")  # gets a browser cookie of its own
    assert intruder.http.get(f"{sealed_idp['issuer']}/login", params=hidden).status_code == 403
    posted = {**hidden, "username": "alice", "password": "alice"}
    refused = intruder.http.post(f"{sealed_idp['issuer']}/login", data=posted)
    assert refused.status_code == 403
    wrong = browser.http.post(f"{sealed_idp['issuer']}/login", data={**posted, "csrf": junk()})
    assert wrong.status_code == 403
    back = browser.sign_in(page)
    if back.status_code == 200 and "consent-allow" in parse_page(back.text).ids:
        back = browser.consent(back)
    assert "code" in callback_params(back)
