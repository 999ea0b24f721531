"""The way out of the provider's pages, and a refused sign-in that keeps the name.

"Back to <client>" (`#back-to-app`) on the sign-in and consent pages is a plain link
to the client's home: the origin of the parked request's registered redirect URI,
path `/` (`interaction.client_home`). Following it tells the provider nothing; the
parked request is left to expire (TRANSACTION_TTL). A wrong password gives the form
back with the name typed (escaped), the focus on the password and the message tied
to both fields. Driven over HTTP against the served provider, plus the pure parts.
"""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest

from pingapp.devidp import pages
from pingapp.devidp.interaction import TRANSACTION_TTL, client_home
from pingapp.devidp.models import Client
from tests.idp.flow import Browser, callback_params, form_error, parse_page, rp, start
from tests.idp.serve import APP_REDIRECT, AUDIENCE

APP_HOME = "http://127.0.0.1:3000/"


def back_link(page: httpx2.Response) -> tuple[str, str]:
    """The `#back-to-app` link's href (as a browser reads it) and its text."""
    link = parse_page(page.text).ids.get("back-to-app")
    assert link is not None, "no back-to-app link"
    assert link["tag"] == "a"
    match = re.search(r'<a id="back-to-app"[^>]*>([^<]*)</a>', page.text)
    assert match is not None
    return link["href"], match.group(1)


def sign_in_page(idp: dict[str, Any], **params: Any) -> tuple[Browser, httpx2.Response]:
    browser = Browser(idp["issuer"])
    client = params.pop("client", None) or rp()
    page, *_ = start(idp, browser, client, **params)
    assert page.status_code == 200
    assert "signin" in parse_page(page.text).ids, page.text[:300]
    return browser, page


# -- where the link leads -------------------------------------------------------------------


def test_sign_in_page_links_back_to_the_clients_home(idp: dict[str, Any]) -> None:
    _, page = sign_in_page(idp)
    assert back_link(page) == (APP_HOME, "Back to pingapp")


def test_the_home_follows_the_redirect_uri_the_request_named(idp: dict[str, Any]) -> None:
    """Both are registered for `pingapp`; the link keeps the host the browser used
    (its cookies at the app are per host)."""
    _, page = sign_in_page(idp, client=rp(redirect_uri="http://localhost:3000/callback"))
    assert back_link(page)[0] == "http://localhost:3000/"
    _, other = sign_in_page(idp, client=rp("other", redirect_uri="http://127.0.0.1:3999/callback"))
    assert back_link(other) == ("http://127.0.0.1:3999/", "Back to other")


def test_consent_page_links_back_too(idp: dict[str, Any]) -> None:
    browser, page = sign_in_page(idp, prompt="consent")
    consent = browser.sign_in(page, "bob")
    assert "consent-allow" in parse_page(consent.text).ids
    assert back_link(consent) == (APP_HOME, "Back to pingapp")


def test_a_pushed_request_links_to_its_own_redirect_uri(par_idp: dict[str, Any]) -> None:
    meta = par_idp["metadata"]
    pushed = httpx2.post(
        meta["pushed_authorization_request_endpoint"],
        data={
            "client_id": "pingapp",
            "response_type": "code",
            "redirect_uri": APP_REDIRECT,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "audience": AUDIENCE,
        },
    )
    assert pushed.status_code == 201, pushed.text
    query = {"client_id": "pingapp", "request_uri": pushed.json()["request_uri"]}
    page = Browser(par_idp["issuer"]).open(
        str(httpx2.URL(meta["authorization_endpoint"], params=query))
    )
    assert page.status_code == 200
    assert back_link(page) == (APP_HOME, "Back to pingapp")


def test_an_unregistered_redirect_uri_gets_no_link_and_no_redirect(idp: dict[str, Any]) -> None:
    evil = "http://evil.example:3000/callback"
    page, *_ = start(idp, Browser(idp["issuer"]), rp(redirect_uri=evil))
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "back-to-app" not in page.text
    assert "<a " not in page.text  # the refusal names the URI, as text only


def test_following_the_link_leaves_the_request_to_expire(clocked_idp: dict[str, Any]) -> None:
    """The link goes straight to the client, so the provider hears nothing: the sign-in
    page (the browser's Back) still works until TRANSACTION_TTL has passed."""
    idp = clocked_idp
    browser, page = sign_in_page(idp)
    login_url = str(page.url)
    again = browser.http.get(login_url)  # Back, after "Back to pingapp"
    assert again.status_code == 200
    back = browser.sign_in(again, "alice")
    if "consent-allow" in parse_page(back.text).ids:
        back = browser.consent(back)
    assert "code" in callback_params(back)

    browser, page = sign_in_page(idp)
    moved = httpx2.post(
        f"{idp['base']}/_clock", params={"clock": "clocked", "seconds": TRANSACTION_TTL + 1}
    )
    moved.raise_for_status()
    expired = browser.http.get(str(page.url))
    assert expired.status_code == 400
    assert "This sign-in has expired" in expired.text


# -- the home, as a pure function -----------------------------------------------------------


def client(*uris: str) -> Client:
    return Client("app", uris)


@pytest.mark.parametrize(
    ("registered", "home"),
    [
        ("http://127.0.0.1:3000/callback", APP_HOME),
        ("https://app.example.org/a/b?c=d#", "https://app.example.org/"),
        ("https://App.Example.org:8443/cb", "https://app.example.org:8443/"),
        ("http://[::1]:3000/callback", "http://[::1]:3000/"),
        # userinfo is not part of an origin
        ("https://user:pw@app.example.org/cb", "https://app.example.org/"),
        # not http(s): no link
        ("com.example.app:/callback", None),
        ("javascript://x/%0aalert(1)", None),
        ("http:///callback", None),
    ],
)
def test_client_home_is_the_origin_of_a_registered_uri(registered: str, home: str | None) -> None:
    assert client_home(client(registered), [("redirect_uri", registered)]) == home


@pytest.mark.parametrize(
    "asked",
    [
        "http://127.0.0.1:3000/other",
        "http://127.0.0.1:3000/callback/",
        "http://127.0.0.1:3001/callback",
        "http://evil.example/callback",
        "",
    ],
)
def test_client_home_is_none_for_an_unregistered_uri(asked: str) -> None:
    registered = client("http://127.0.0.1:3000/callback")
    assert client_home(registered, [("client_id", "app"), ("redirect_uri", asked)]) is None
    assert client_home(registered, [("client_id", "app")]) is None


def test_client_home_reads_the_first_redirect_uri_as_authlib_does() -> None:
    registered = client("http://127.0.0.1:3000/callback")
    params = [
        ("redirect_uri", "http://127.0.0.1:3000/callback"),
        ("redirect_uri", "http://evil.example/callback"),
    ]
    assert client_home(registered, params) == APP_HOME
    assert client_home(registered, params[::-1]) is None
    assert client_home(None, params) is None


def test_the_link_is_escaped() -> None:
    html = pages.back_link('http://x/"><script>alert(1)</script>', "<b>app</b>&")
    assert "<script>" not in html
    assert "<b>" not in html
    assert 'href="http://x/&quot;&gt;&lt;script&gt;' in html
    assert "Back to &lt;b&gt;app&lt;/b&gt;&amp;" in html
    assert pages.back_link(None, "app") == pages.back_link("", "app") == ""


# -- a wrong password keeps the name --------------------------------------------------------


def test_a_fresh_form_focuses_the_name(idp: dict[str, Any]) -> None:
    _, page = sign_in_page(idp)
    ids = parse_page(page.text).ids
    assert "autofocus" in ids["username"]
    assert "autofocus" not in ids["password"]
    assert "value" not in ids["username"]
    for field in ("username", "password"):
        assert "aria-describedby" not in ids[field]
        assert "aria-invalid" not in ids[field]


def test_a_wrong_password_keeps_the_name_and_focuses_the_password(idp: dict[str, Any]) -> None:
    browser, page = sign_in_page(idp, prompt="consent")
    refused = browser.sign_in(page, "alice", "wrong")
    assert refused.status_code == 401
    assert form_error(refused) == "Wrong user name or password."
    ids = parse_page(refused.text).ids
    assert ids["username"]["value"] == "alice"
    assert "autofocus" in ids["password"]
    assert "autofocus" not in ids["username"]
    assert "value" not in ids["password"]  # the password is never sent back
    assert "wrong" not in refused.text
    for field in ("username", "password"):
        assert ids[field]["aria-describedby"] == "signin-error"
        assert ids[field]["aria-invalid"] == "true"
    assert ids["signin-error"]["role"] == "alert"
    assert back_link(refused) == (APP_HOME, "Back to pingapp")
    # the right password on the same page goes on
    consent = browser.sign_in(refused, "alice", "alice")
    assert "consent-allow" in parse_page(consent.text).ids


def test_the_kept_name_is_escaped(idp: dict[str, Any]) -> None:
    browser, page = sign_in_page(idp)
    typed = "\"><script>alert(1)</script>&amp;'x"
    refused = browser.sign_in(page, typed, "wrong")
    assert refused.status_code == 401
    assert "<script>" not in refused.text
    # a browser reads the value back as it was typed
    assert parse_page(refused.text).ids["username"]["value"] == typed
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;amp;&#x27;x"' in (
        refused.text
    )


def test_an_empty_name_is_not_kept(idp: dict[str, Any]) -> None:
    browser, page = sign_in_page(idp)
    refused = browser.submit(page, {"username": "  ", "password": "wrong"})
    assert refused.status_code == 401
    ids = parse_page(refused.text).ids
    assert "value" not in ids["username"]
    assert "autofocus" in ids["username"]
