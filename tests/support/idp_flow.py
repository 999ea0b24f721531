"""Calls at the embedded provider that several of its test files make, over HTTP:
the authorization endpoint with a fixed PKCE challenge, pushed requests (RFC 9126),
refresh and revocation, and what the back-channel logout receiver got
(tests/idp/receiver.py). The browser and the relying party are in tests/idp/flow.py.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx2
import jwt

from tests.idp.flow import FULL_SCOPE
from tests.idp.serve import APP_REDIRECT, AUDIENCE
from tests.support.net import wait_until

# -- the authorization endpoint -------------------------------------------------------

#: A fixed S256 PKCE challenge (RFC 7636 appendix B's).
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def authorize(idp: dict[str, Any], **params: str | None) -> httpx2.Response:
    """GET the authorization endpoint with a valid request for the app's client, changed
    by `params` (None leaves a parameter out); redirects are not followed."""
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
    return httpx2.get(f"{idp['metadata']['authorization_endpoint']}?{urlencode(query)}")


# -- pushed authorization requests (RFC 9126) -----------------------------------------


def s256_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of `verifier`."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def push(
    idp: dict[str, Any], client: str = "pingapp", *, auth: Any = None, **overrides: Any
) -> tuple[httpx2.Response, dict[str, str], str]:
    """POST an authorization request to `/par`; the answer, the request and the verifier.
    An override of None leaves that parameter out."""
    verifier = secrets.token_urlsafe(48)
    params = {
        "client_id": client,
        "response_type": "code",
        "redirect_uri": APP_REDIRECT,
        "scope": FULL_SCOPE,
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
        "audience": AUDIENCE,
    } | overrides
    data = {k: v for k, v in params.items() if v is not None}
    endpoint = idp["metadata"]["pushed_authorization_request_endpoint"]
    return httpx2.post(endpoint, data=data, auth=auth), data, verifier


def authorize_url(idp: dict[str, Any], client_id: str, request_uri: str, **extra: str) -> str:
    """The authorization endpoint's URL for a pushed request."""
    query = urlencode({"client_id": client_id, "request_uri": request_uri, **extra})
    return f"{idp['metadata']['authorization_endpoint']}?{query}"


# -- refresh (RFC 6749 section 6) and revocation (RFC 7009) ---------------------------


def refresh(idp: dict[str, Any], token: str, client_id: str = "pingapp", **extra: str):
    return httpx2.post(
        idp["metadata"]["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
        | extra,
    )


def revoke(idp: dict[str, Any], token: str, client_id: str = "pingapp", **extra: str):
    return httpx2.post(
        idp["metadata"]["revocation_endpoint"],
        data={"token": token, "client_id": client_id} | extra,
    )


# -- back-channel logout: what the receiver got ---------------------------------------


def for_session(posts: list[dict[str, Any]], sid: str) -> list[dict[str, Any]]:
    """The POSTs whose Logout Token names the provider session `sid` (unverified)."""

    def sid_in(post: dict[str, Any]) -> str:
        token = post["form"]["logout_token"]
        return jwt.decode(token, options={"verify_signature": False}).get("sid", "")

    return [post for post in posts if sid_in(post) == sid]


def received(receiver: str, name: str, sid: str) -> list[dict[str, Any]]:
    """What the receiver got at `/bcl/{name}` for the provider session `sid`."""
    posts = httpx2.get(f"{receiver}/_received").json()
    return for_session([post for post in posts if post["name"] == name], sid)


def delivered(receiver: str, name: str, sid: str) -> list[dict[str, Any]]:
    """`received`, once it is not empty (deliveries run in the background)."""
    return wait_until(
        lambda: received(receiver, name, sid),
        what=f"a Logout Token at /bcl/{name}",
        timeout=10,
        interval=0.05,
    )
