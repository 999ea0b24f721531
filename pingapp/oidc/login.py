"""The browser's trips to the provider: the authorization request (what a login
keeps between Log In and the callback, and the parameters it sends: PKCE S256,
state, nonce, audience, scope, max_age) and the logout URL.

The pending login is kept server-side only (docs/security.md items 13-15).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from pingapp.settings import Settings


@dataclasses.dataclass(frozen=True)
class PendingLogin:
    """What the callback needs to finish a login; kept server-side only."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    return_to: str
    started_at: float
    #: Seconds: the sign-in must be at most this old (OIDC `max_age`, RFC 9470 step-up).
    max_age: int | None = None


def new_pending_login(
    redirect_uri: str, return_to: str, *, max_age: int | None = None
) -> PendingLogin:
    return PendingLogin(
        state=generate_token(43),
        nonce=generate_token(43),
        # RFC 7636: 43-128 characters from the unreserved set; 64 from a CSPRNG.
        code_verifier=generate_token(64),
        redirect_uri=redirect_uri,
        return_to=safe_return_path(return_to),
        started_at=time.time(),
        max_age=max_age,
    )


def authorization_params(
    settings: Settings, pending: PendingLogin, *, prompt: str | None = None
) -> dict[str, str]:
    """The authorization request: PKCE, state, nonce, audience, scope (and max_age)."""
    params: dict[str, str] = {
        "client_id": settings.auth_client_id,
        "response_type": "code",
        "redirect_uri": pending.redirect_uri,
        "scope": settings.auth_scope,
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": create_s256_code_challenge(pending.code_verifier),
        "code_challenge_method": "S256",
        **settings.audience_params(),
    }
    if prompt is None and needs_consent_prompt(settings):
        prompt = "consent"
    if prompt:
        params["prompt"] = prompt
    if pending.max_age is not None:
        params["max_age"] = str(pending.max_age)
    return params


def needs_consent_prompt(settings: Settings) -> bool:
    """OIDC Core section 11: a provider may ignore `offline_access` (and so issue no
    refresh token) unless `prompt=consent` is sent. Auth0 and the embedded provider
    grant it without; any other provider gets the prompt."""
    wants_refresh = "offline_access" in settings.auth_scope.split()
    return wants_refresh and settings.auth_issuer is not None


def safe_return_path(value: str | None) -> str:
    """A local path starting with exactly one `/`, or `/` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(char in value for char in "\\\r\n\t") or any(ord(c) < 0x20 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def end_session_url(
    metadata: Mapping[str, Any],
    settings: Settings,
    *,
    logout_hint: str | None,
    return_to: str,
    state: str | None = None,
) -> str | None:
    """Where to send the browser to end the provider's session, if anywhere.

    OpenID Connect RP-Initiated Logout 1.0 at the provider's `end_session_endpoint`:
    `client_id` names this app, `logout_hint` (the user's `sub`, when the caller
    knows it) names the user, `post_logout_redirect_uri` is `return_to` (registered
    at the provider), and `state`, if given, comes back with the browser. The ID
    token is never put in this URL: it would sit in the address bar, the history
    and the provider's access logs (docs/security.md items 19 and 24).

    Auth0 tenants whose discovery has no `end_session_endpoint` get Auth0's own
    `/v2/logout?client_id=...&returnTo=...`. Any other provider without one: None.
    """
    end_session = metadata.get("end_session_endpoint")
    if isinstance(end_session, str):
        params = {"client_id": settings.auth_client_id, "post_logout_redirect_uri": return_to}
        if logout_hint:
            params["logout_hint"] = logout_hint
        if state:
            params["state"] = state
        separator = "&" if urlsplit(end_session).query else "?"
        return f"{end_session}{separator}{urlencode(params)}"
    if settings.auth0_domain:
        # Auth0 tenants without RP-initiated logout enabled in discovery.
        query = urlencode({"client_id": settings.auth_client_id, "returnTo": return_to})
        return f"https://{settings.auth0_domain}/v2/logout?{query}"
    return None
