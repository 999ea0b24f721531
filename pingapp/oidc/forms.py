"""Form posts to the provider's endpoints (token, PAR): this client's
authentication (and a DPoP proof, for a bound sign-in) and the provider's JSON
answer, or a clear `LoginError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

from pingapp.dpop import Prover, send_with_proof
from pingapp.oidc.errors import GrantRejected, LoginError, ProviderUnavailable
from pingapp.settings import Settings


def error_of(body: Mapping[str, Any]) -> tuple[str, str]:
    """An OAuth error answer's `error` and `error_description` (RFC 6749 5.2)."""
    code = str(body.get("error", "server_error"))
    return code, str(body.get("error_description", "")) or "no description given"


def client_authentication(
    settings: Settings, form: dict[str, str]
) -> tuple[httpx2.Auth | httpx2._client.UseClientDefault, dict[str, str]]:
    """HTTP Basic with the secret for a confidential client; else `client_id` in the form."""
    if settings.auth_client_secret is not None:
        secret = settings.auth_client_secret.get_secret_value()
        return httpx2.BasicAuth(settings.auth_client_id, secret), form
    return httpx2.USE_CLIENT_DEFAULT, {**form, "client_id": settings.auth_client_id}


async def post_form(
    http: httpx2.AsyncClient,
    settings: Settings,
    url: object,
    form: dict[str, str],
    *,
    what: str,
    prover: Prover | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST `form` with the client's authentication; the status and the JSON body.
    With `prover`, the post carries a DPoP proof (once more with the provider's
    nonce if it asks for one)."""
    if not isinstance(url, str):
        raise ProviderUnavailable(f"The sign-in provider has no {what}", "Check AUTH_ISSUER.")
    auth, form = client_authentication(settings, form)
    try:
        headers = {"Accept": "application/json"}
        if prover is None:
            response = await http.post(url, data=form, auth=auth, headers=headers)
        else:
            response = await send_with_proof(
                http, "POST", url, prover, data=form, auth=auth, headers=headers
            )
    except httpx2.TimeoutException:
        raise ProviderUnavailable(
            "The sign-in provider is too slow",
            f"Its {what} did not answer in time. Try again in a moment; if it keeps "
            "happening, check that the provider is up and AUTH_ISSUER (or AUTH0_DOMAIN) "
            "is right.",
        ) from None
    except httpx2.TransportError:
        raise ProviderUnavailable(
            "The sign-in provider cannot be reached",
            f"Its {what} did not answer. Check that the provider is up, then try again.",
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            f"Its {what} answered {response.status_code} without JSON.",
        )
    return response.status_code, body


async def token_request(
    http: httpx2.AsyncClient,
    settings: Settings,
    url: object,
    form: dict[str, str],
    *,
    prover: Prover | None = None,
) -> dict[str, Any]:
    """POST to the token endpoint (`post_form`): its answer with an access token, or
    `GrantRejected` (`invalid_grant`) or another `LoginError`."""
    status, body = await post_form(http, settings, url, form, what="token endpoint", prover=prover)
    if status != 200 or "error" in body:
        code, description = error_of(body)
        if code == "invalid_grant":
            raise GrantRejected(
                "The sign-in has expired or was already used",
                f"The provider said: {description}. Sign in again.",
                code=code,
            )
        raise LoginError(
            "The sign-in provider refused the request",
            f"{code}: {description}. Check AUTH_CLIENT_ID (and AUTH_CLIENT_SECRET, if "
            "the provider's application is confidential).",
            code=code,
        )
    if not isinstance(body.get("access_token"), str):
        raise ProviderUnavailable(
            "The sign-in provider answered something unexpected",
            "Its token response has no access_token.",
        )
    return body
