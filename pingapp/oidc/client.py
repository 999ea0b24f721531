"""The OpenID Connect client: one object per provider, built once on the shared
HTTP client, holding the settings, the provider's metadata and its keys.

    oidc = OIDCClient(client, settings, issuer)
    url = await oidc.authorization_url(pending)          # PAR when advertised
    tokens = await oidc.exchange_code(pending, code)
    claims = await oidc.validate_id_token(tokens["id_token"], nonce=pending.nonce)

No Reflex here. authlib builds the request parameters (PKCE, the grant URI);
PyJWT checks signatures (`pingapp.oidc.id_token`); metadata and keys are fetched
single-flight with a failure cooldown (`pingapp.oidc.discovery`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx2
import jwt
from authlib.common.urls import add_params_to_uri

from pingapp.core.keys import KeyStore, KeysUnavailable, UnknownKey
from pingapp.dpop import DPoPKey, NonceMemory, Prover
from pingapp.oidc.discovery import Discovery
from pingapp.oidc.dpop import bound_jkt, login_key, not_bound_error
from pingapp.oidc.errors import LoginError, ProviderUnavailable
from pingapp.oidc.forms import client_authentication, error_of, post_form, token_request
from pingapp.oidc.id_token import check_id_token, check_logout_token
from pingapp.oidc.login import PendingLogin, authorization_params, end_session_url
from pingapp.outbound.http import Credential, TokenAuth
from pingapp.settings import Settings

logger = logging.getLogger(__name__)


class OIDCClient:
    """This app as a client of one OpenID Provider (the relying party)."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        settings: Settings,
        issuer: str,
        *,
        discovery: Discovery | None = None,
        keys: KeyStore | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`discovery` and `keys`: the issuer's, shared with the API (`pingapp.context`);
        built here when not given (tests, tools)."""
        self.http = client
        #: The provider's latest `DPoP-Nonce` (per origin), for its next proof.
        self.dpop_nonces = NonceMemory()
        self.settings = settings
        self.issuer = issuer
        self.discovery = discovery or Discovery(
            client, issuer, failure_cooldown=settings.auth_failure_cooldown, monotonic=monotonic
        )
        #: The issuer's signing keys, for ID and logout tokens (`pingapp.core.keys`).
        self.keys = keys or self.discovery.key_store(
            algorithms=settings.auth_algorithms,
            fetch_timeout=settings.key_fetch_timeout,
            monotonic=monotonic,
        )

    async def metadata(self) -> dict[str, Any]:
        """The provider's checked discovery document (cached; docs/security.md 39-40)."""
        return await self.discovery.get()

    # --- the authorization request ------------------------------------------------------

    async def uses_par(self) -> bool:
        """Whether to push the request first (RFC 9126): AUTH_USE_PAR, or `auto` and the
        provider advertises (or requires) it."""
        metadata = await self.metadata()
        advertised = isinstance(metadata.get("pushed_authorization_request_endpoint"), str)
        if self.settings.auth_use_par == "false":
            return False
        if self.settings.auth_use_par == "true" and not advertised:
            raise LoginError(
                "The sign-in provider does not offer pushed authorization requests",
                "AUTH_USE_PAR=true, but its discovery document has no "
                "pushed_authorization_request_endpoint. Set AUTH_USE_PAR=auto.",
                code="no_par",
            )
        return advertised

    async def authorization_url(self, pending: PendingLogin, *, prompt: str | None = None) -> str:
        """Where to send the browser to sign in. With PAR (RFC 9126) the request is
        pushed to the provider first and the URL carries only `client_id` and the
        `request_uri` it answered with: nothing of the request travels through the
        browser. Without it, the whole request is in the URL's query."""
        metadata = await self.metadata()
        params = authorization_params(self.settings, pending, prompt=prompt)
        if not await self.uses_par():
            return add_params_to_uri(metadata["authorization_endpoint"], list(params.items()))
        status, body = await post_form(
            self.http,
            self.settings,
            metadata["pushed_authorization_request_endpoint"],
            params,
            what="pushed authorization request endpoint",
        )
        request_uri = body.get("request_uri")
        if status != 201 or "error" in body or not isinstance(request_uri, str):
            code, description = error_of(body)
            raise LoginError(
                "The sign-in provider refused the sign-in request",
                f"{code}: {description}. Check AUTH_CLIENT_ID and the application's "
                "redirect URIs at the provider.",
                code=code,
            )
        return add_params_to_uri(
            metadata["authorization_endpoint"],
            [("client_id", self.settings.auth_client_id), ("request_uri", request_uri)],
        )

    async def new_dpop_key(self) -> str:
        """A sign-in's DPoP key (storage form), or '' for bearer tokens (`login_key`)."""
        if self.settings.auth_dpop == "off":
            return ""
        return login_key(self.settings.auth_dpop, await self.metadata())

    async def check_response_issuer(self, iss: str | None) -> None:
        """RFC 9207: the authorization response names its issuer; a different one is
        a mix-up attack. Required whenever the provider says it sends it."""
        metadata = await self.metadata()
        promised = metadata.get("authorization_response_iss_parameter_supported") is True
        if (iss is not None and iss != metadata["issuer"]) or (promised and iss is None):
            raise LoginError(
                "The answer came from another provider",
                "The sign-in response does not name this app's provider as its issuer. "
                "Press Log In to try again.",
                code="issuer_mismatch",
            )

    # --- the token endpoint --------------------------------------------------------------

    async def _token_request(self, form: dict[str, str], dpop_key: str) -> dict[str, Any]:
        """POST to the token endpoint, with a DPoP proof when `dpop_key` is given."""
        url = (await self.metadata()).get("token_endpoint")
        prover = Prover(DPoPKey.from_json(dpop_key), self.dpop_nonces) if dpop_key else None
        body = await token_request(self.http, self.settings, url, form, prover=prover)
        if prover and self.settings.auth_dpop == "required" and not bound_jkt(body, dpop_key):
            raise not_bound_error()
        return body

    async def exchange_code(
        self, pending: PendingLogin, code: str, *, dpop_key: str = ""
    ) -> dict[str, Any]:
        """Trade the authorization code (and PKCE verifier) for tokens, bound to
        `dpop_key` (storage form) when given."""
        return await self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.code_verifier,
            },
            dpop_key,
        )

    async def refresh(self, refresh_token: str, *, dpop_key: str = "") -> dict[str, Any]:
        """Use a refresh token (with a proof of the session's key, if it has one); the
        answer may carry a rotated one."""
        return await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, dpop_key
        )

    async def revoke(self, token: str) -> bool:
        """Revoke a refresh token (RFC 7009) where the provider supports it. Never
        raises: a failure is logged and answered False."""
        try:
            url = (await self.metadata()).get("revocation_endpoint")
        except LoginError as error:
            logger.info("could not revoke the refresh token: %s", error.title)
            return False
        if not isinstance(url, str):
            return False
        auth, form = client_authentication(
            self.settings, {"token": token, "token_type_hint": "refresh_token"}
        )
        try:
            response = await self.http.post(url, data=form, auth=auth)
        except httpx2.TransportError as error:
            logger.info("could not revoke the refresh token: %s", type(error).__name__)
            return False
        return response.status_code == 200

    # --- what the provider sends -----------------------------------------------------------

    async def signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The issuer's key `kid` for `alg` (`KeyStore.key`), or `LoginError`."""
        await self.metadata()  # the provider's own error, if it cannot be had
        try:
            return await self.keys.key(kid, alg)
        except KeysUnavailable as error:
            raise ProviderUnavailable(
                "The sign-in provider's keys cannot be used",
                f"Its key set gave no usable key ({error.reason}). Check AUTH_ISSUER.",
            ) from None
        except UnknownKey:
            raise LoginError(
                "The sign-in could not be verified",
                "The ID token is signed with a key the provider does not publish.",
                code="unknown_key",
            ) from None

    async def validate_id_token(
        self,
        id_token: str,
        *,
        nonce: str | None,
        max_age: int | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Check an ID token in full (OIDC Core 3.1.3.7) and return its claims."""
        issuer = (await self.metadata())["issuer"]
        return await check_id_token(
            id_token, self.signing_key, self.settings, issuer, nonce=nonce, max_age=max_age, now=now
        )

    async def validate_logout_token(self, token: str, *, now: float | None = None) -> dict:
        """Check a back-channel Logout Token in full; the caller makes sure `jti` is
        used once. `LogoutTokenRefused` (or `LoginError` without metadata) otherwise."""
        issuer = (await self.metadata())["issuer"]
        return await check_logout_token(token, self.signing_key, self.settings, issuer, now=now)

    async def userinfo(self, access_token: str, *, dpop_key: str = "") -> dict[str, Any]:
        """The provider's profile of the user (the tutorial's Profile page), or {}.
        `dpop_key`: the key a bound token is bound to (`Authorization: DPoP` + proof).
        Sent like every call that carries an access token (`pingapp.outbound.http.TokenAuth`),
        to the userinfo endpoint only; no refresh here (the token was just issued)."""
        url = (await self.metadata()).get("userinfo_endpoint")
        if not isinstance(url, str):
            return {}
        key = DPoPKey.from_json(dpop_key) if dpop_key else None
        credential = Credential(access_token, key)

        async def provide(rejected: str | None) -> Credential:
            del rejected  # never asked again: retry=False
            return credential

        # No redirect is followed: the profile comes from the userinfo endpoint or not at all.
        auth = TokenAuth(provide, [url], retry=False, max_redirects=0, nonces=self.dpop_nonces)
        try:
            response = await self.http.get(url, auth=auth)
            body = response.json() if response.status_code == 200 else None
        except (httpx2.TransportError, httpx2.TooManyRedirects, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    # --- logout ------------------------------------------------------------------------------

    async def logout_url(
        self, *, logout_hint: str | None, return_to: str, state: str | None = None
    ) -> str | None:
        """Where to send the browser to end the provider's session (`end_session_url`)."""
        metadata = await self.metadata()
        return end_session_url(
            metadata, self.settings, logout_hint=logout_hint, return_to=return_to, state=state
        )

    async def reachable(self, url: str) -> bool:
        """Whether the provider answers at `url` at all (any HTTP status will do).

        Only the endpoint is asked, without the query, so the probe itself ends nothing.
        """
        try:
            await self.http.head(url.partition("?")[0])
        except httpx2.HTTPError:
            return False
        return True
