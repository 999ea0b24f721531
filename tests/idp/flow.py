"""A browser and a relying party, as the provider's tests drive them over HTTP.

`Browser` keeps cookies and follows redirects only inside the provider, like a
user would click through; it stops at the page shown or at the redirect back to
the client. `login` runs the whole authorization code + PKCE flow with authlib's
OAuth client, posting the sign-in and consent forms as a browser does.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
from authlib.integrations.httpx_client import OAuth2Client

from tests.idp.serve import APP_REDIRECT, AUDIENCE

FULL_SCOPE = "openid profile email offline_access read:messages"


class _Forms(HTMLParser):
    """Reads the inputs and buttons of a page, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.hidden: dict[str, str] = {}
        self.ids: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        if "id" in values:
            self.ids[values["id"]] = {"tag": tag, **values}
        if tag == "input" and values.get("type") == "hidden":
            self.hidden[values["name"]] = values.get("value", "")


def parse_page(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


@dataclass
class Browser:
    issuer: str
    http: httpx2.Client = field(default_factory=lambda: httpx2.Client(timeout=10))

    def go(self, response: httpx2.Response) -> httpx2.Response:
        """Follow redirects while they stay on the provider."""
        for _ in range(10):
            location = response.headers.get("location")
            if response.status_code not in (302, 303) or not location:
                return response
            if not location.startswith(self.issuer + "/"):
                return response  # back to the client: stop, as the test is the client
            response = self.http.get(location)
        raise AssertionError("redirect loop")

    def open(self, url: str) -> httpx2.Response:
        return self.go(self.http.get(url))

    def submit(self, page: httpx2.Response, data: dict[str, Any]) -> httpx2.Response:
        form = parse_page(page.text)
        assert form.action.startswith(self.issuer), form.action
        return self.go(self.http.post(form.action, data={**form.hidden, **data}))

    def sign_in(self, page: httpx2.Response, user: str = "alice", password: str | None = None):
        ids = parse_page(page.text).ids
        assert {"username", "password", "signin"} <= ids.keys(), "not the sign-in page"
        return self.submit(
            page, {"username": user, "password": user if password is None else password}
        )

    def consent(
        self, page: httpx2.Response, *, allow: bool = True, scopes: list[str] | None = None
    ):
        ids = parse_page(page.text).ids
        assert {"consent-allow", "consent-deny"} <= ids.keys(), "not the consent page"
        ticked = scopes
        if ticked is None:  # as shown: every box ticked
            ticked = [v["value"] for k, v in ids.items() if k.startswith("scope-")]
        data: dict[str, Any] = {"decision": "allow" if allow else "deny", "scope": ticked}
        return self.submit(page, data)


def callback_params(response: httpx2.Response) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


@dataclass
class Login:
    token: dict[str, Any]
    client: OAuth2Client
    nonce: str
    browser: Browser


def rp(client_id: str = "pingapp", scope: str = FULL_SCOPE, **kwargs: Any) -> OAuth2Client:
    return OAuth2Client(
        client_id,
        redirect_uri=kwargs.pop("redirect_uri", APP_REDIRECT),
        scope=scope,
        code_challenge_method="S256",
        token_endpoint_auth_method=kwargs.pop("auth_method", "none"),
        timeout=10,
        **kwargs,
    )


def start(
    idp: dict[str, Any], browser: Browser, client: OAuth2Client, **params: Any
) -> tuple[httpx2.Response, str, str, str]:
    """Open the authorization URL; return the page or redirect, state, verifier, nonce."""
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    params.setdefault("audience", AUDIENCE)
    url, state = client.create_authorization_url(
        idp["metadata"]["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **params
    )
    return browser.open(url), state, verifier, nonce


def finish(idp: dict[str, Any], client: OAuth2Client, back: httpx2.Response, verifier: str):
    assert back.status_code == 302, (back.status_code, back.text[:500])
    return client.fetch_token(
        idp["metadata"]["token_endpoint"],
        authorization_response=back.headers["location"],
        code_verifier=verifier,
    )


def login(
    idp: dict[str, Any],
    browser: Browser | None = None,
    *,
    user: str = "alice",
    scopes: list[str] | None = None,
    client: OAuth2Client | None = None,
    **params: Any,
) -> Login:
    browser = browser or Browser(idp["issuer"])
    client = client or rp()
    page, _, verifier, nonce = start(idp, browser, client, **params)
    if page.status_code == 200 and "signin" in parse_page(page.text).ids:
        page = browser.sign_in(page, user)
    if page.status_code == 200 and "consent-allow" in parse_page(page.text).ids:
        page = browser.consent(page, scopes=scopes)
    return Login(finish(idp, client, page, verifier), client, nonce, browser)


def verify(idp: dict[str, Any], token: str, *, audience: str, typ: str) -> dict[str, Any]:
    """PyJWT, an independent implementation, with the provider's published JWKS."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header.get("typ") == typ
    jwks = jwt.PyJWKSet.from_dict(httpx2.get(idp["metadata"]["jwks_uri"]).json())
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    return jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience=audience,
        issuer=idp["issuer"],
        options={"require": ["iss", "sub", "aud", "exp", "iat"]},
    )


def form_error(response: httpx2.Response) -> str:
    match = re.search(r'id="signin-error"[^>]*>([^<]+)<', response.text)
    return match.group(1) if match else ""
