"""The API's FastAPI security dependencies, and its OpenAPI security scheme.

Use them in any route::

    from pingapp.api.security import VerifiedToken, require_scopes

    @router.get("/me")
    async def me(token: VerifiedToken) -> dict: ...          # any valid access token

    @router.get("/reports")
    async def reports(
        token: Annotated[AccessToken, require_scopes("read:reports")],
    ) -> dict: ...                                          # plus a scope

The token is read from the `Authorization` header only (RFC 6750 section 2.1;
docs/security.md items 9-10) and checked by the app's `TokenVerifier`
(`app.state.token_verifier`, or else the one built from the settings, on the
shared HTTP client). A DPoP-bound token (`cnf.jkt`) is accepted only with the
`DPoP` scheme and a valid proof for this request; plain bearer tokens unless the
app's `DPoPPolicy` requires DPoP (`pingapp.api.dpop`). Refusals are RFC 6750 /
RFC 9449 errors (`pingapp.api.errors`) naming every accepted scheme.
The scopes a route needs are listed in its OpenAPI operation; `security_scheme`
turns them into the one OAuth2 scheme (code + PKCE) the docs page signs in with.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.security.base import SecurityBase

from pingapp import telemetry
from pingapp.api import errors
from pingapp.api.dpop import DPoPPolicy, bound_jkt, check_dpop, dpop_policy_of, fresh_nonce
from pingapp.api.jws import TokenRefused
from pingapp.api.verifier import AccessToken, TokenVerifier
from pingapp.core.keys import ClientSource, KeyStore
from pingapp.dpop import DPoPError
from pingapp.oidc.discovery import Discovery
from pingapp.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: The name of the OAuth2 scheme in the OpenAPI document.
SCHEME_NAME = "OAuth2"

#: RFC 6750 section 2.1 `b64token`, the only token syntax a Bearer header allows.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCHEMES = {"bearer": "Bearer", "dpop": "DPoP"}


class NotConfigured(RuntimeError):
    """The API cannot verify any token with the current configuration."""


def oauth2_model(
    scopes: Mapping[str, str], metadata: Mapping[str, Any] | None = None
) -> OAuth2Model:
    """The OAuth2 scheme: authorization code + PKCE at the provider's endpoints
    (`metadata` from discovery; placeholders without it), offering `scopes`."""
    metadata = metadata or {}
    return OAuth2Model(
        flows=OAuthFlows(
            authorizationCode=OAuthFlowAuthorizationCode(
                authorizationUrl=metadata.get("authorization_endpoint", "/authorize"),
                tokenUrl=metadata.get("token_endpoint", "/token"),
                scopes=dict(scopes),
            )
        ),
        description="Authorization code with PKCE; no client secret.",
    )


def route_scopes(schema: Mapping[str, Any]) -> dict[str, str]:
    """Every scope a route of `schema` asks for, described by the route."""
    found: dict[str, str] = {}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for requirement in operation.get("security", []):
                for scope in requirement.get(SCHEME_NAME, []):
                    found.setdefault(scope, f"Needed by {operation.get('summary', 'a route')}")
    return found


def security_scheme(
    schema: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`schema` whose OAuth2 scheme offers `openid` and every scope its routes need."""
    scopes = {"openid": "Sign in", **route_scopes(schema)}
    scheme = jsonable_encoder(oauth2_model(scopes, metadata), by_alias=True, exclude_none=True)
    components = {**schema.get("components", {})}
    components["securitySchemes"] = {**components.get("securitySchemes", {}), SCHEME_NAME: scheme}
    return {**schema, "components": components}


def _credentials_from(request: Request) -> tuple[str, str]:
    """The scheme (`Bearer` or `DPoP`) and token of the `Authorization` header
    (RFC 6750 section 2.1, RFC 9449 section 7.1; never the URL)."""
    scope = request.scope
    # Read the raw ASGI scope: this runs on every request, and building
    # Starlette's header and query objects costs more than the check itself.
    if scope.get("query_string") and "access_token" in request.query_params:
        raise errors.invalid_request(
            "Send the access token in the Authorization header, not in the URL."
        )
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if not values:
        raise errors.missing_token()
    if len(values) > 1:
        raise errors.invalid_request("Send one Authorization header.")
    scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
    scheme = _SCHEMES.get(scheme.lower(), "")
    if not scheme:
        raise errors.invalid_request("Use the Bearer or DPoP authorization scheme.")
    credentials = credentials.strip(" ")
    if not credentials:
        raise errors.invalid_request("The Authorization header has no token.")
    if _B64TOKEN.fullmatch(credentials) is None:
        raise errors.invalid_request("The Authorization header must hold exactly one token.")
    return scheme, credentials


def build_verifier(
    settings: Settings,
    *,
    backend: str,
    client: ClientSource | None = None,
    discovery: Discovery | None = None,
    keys: KeyStore | None = None,
) -> TokenVerifier:
    """The API's verifier, from the settings (`NotConfigured` without AUTH_AUDIENCE).
    In the app it shares the issuer's `discovery` and `keys` with the sign-in, and the
    app's HTTP client (`pingapp.context`)."""
    if settings.auth_audience is None:
        raise NotConfigured(NO_AUDIENCE)
    return TokenVerifier(
        issuer=settings.effective_issuer(backend),
        audience=settings.auth_audience,
        algorithms=settings.auth_algorithms,
        leeway=settings.auth_leeway,
        client_id=settings.auth_client_id,
        # The embedded provider issues RFC 9068 tokens (typ at+jwt); Auth0 does not.
        require_at_jwt=(
            settings.uses_embedded_provider
            if settings.auth_require_at_jwt is None
            else settings.auth_require_at_jwt
        ),
        failure_retry=settings.auth_failure_cooldown,
        fetch_timeout=settings.key_fetch_timeout,
        cache_size=settings.auth_token_cache_size,
        max_token_lifetime=settings.auth_max_token_lifetime,
        client=client,
        discovery=discovery,
        keys=keys,
    )


#: What `create_api(verifier=...)` takes: a verifier, a function giving the app's (None
#: when the API is not configured), or None: built from the settings at first use.
VerifierSource = TokenVerifier | Callable[[], TokenVerifier | None]

NO_AUDIENCE = "AUTH_AUDIENCE is empty: the API cannot check which API a token is for"


def verifier_of(request: Request) -> TokenVerifier:
    """The verifier of the API serving `request` (`app.state.token_verifier`: given to
    `create_api`, or built from the settings at its first request, with a client of
    its own that the API's lifespan closes); `NotConfigured` without an audience."""
    state = request.app.state
    source: VerifierSource | None = getattr(state, "token_verifier", None)
    if source is None:
        from pingapp.urls import backend_url

        source = state.token_verifier = build_verifier(get_settings(), backend=backend_url())
    verifier = source() if callable(source) else source
    if verifier is None:
        raise NotConfigured(NO_AUDIENCE)
    return verifier


def scheme_of(request: Request) -> str:
    """`DPoP` when the request's token came with that scheme, else `Bearer`."""
    value = request.headers.get("authorization", "")
    return "DPoP" if value.strip().lower().startswith("dpop ") else "Bearer"


def challenged(error: errors.BearerError, request: Request) -> errors.BearerError:
    """`error` whose challenges name every scheme the API accepts, DPoP's `algs`
    and the RFC 9728 metadata URL (a 401, or any refusal of a DPoP request)."""
    if error.status_code == 401 or error.scheme == "DPoP":
        policy = dpop_policy_of(request)
        error.challenge_all(
            accept_bearer=not policy.required,
            algs=policy.algs,
            resource_metadata=policy.metadata_url(request),
            nonce=fresh_nonce(policy, error.error, None),
        )
    return error


class BearerToken(SecurityBase):
    """The security dependency: verifies the token, then this instance's scopes.

    A `SecurityBase`, so the OpenAPI document lists the scheme and each route's
    scopes (`security_scheme` fills in the provider's endpoints). The scopes are
    fixed per instance rather than read from FastAPI's `SecurityScopes`, which
    would cost an extra object on every request.
    """

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        self.scopes = tuple(scopes)
        self.model = oauth2_model(dict.fromkeys(self.scopes, "Needed by a route"))
        self.scheme_name = SCHEME_NAME
        self.auto_error = True

    async def __call__(self, request: Request, response: Response) -> AccessToken:
        policy = dpop_policy_of(request)
        # With telemetry on, the check is the span `pingapp.api.check_token`, a child
        # of the request's (and so of the ping that called the API).
        with telemetry.span("pingapp.api.check_token") as span:
            try:
                return await self._check(request, response, policy)
            except errors.BearerError as error:
                span.set_attribute("pingapp.reason", error.error or "missing_token")
                raise challenged(error, request) from None

    async def _check(self, request: Request, response: Response, policy: DPoPPolicy) -> AccessToken:
        scheme, token = _credentials_from(request)
        if scheme == "Bearer" and policy.required:
            raise errors.invalid_token("This API accepts DPoP-bound access tokens only.", "DPoP")
        try:
            verifier = verifier_of(request)
        except NotConfigured as problem:
            # A configuration mistake: logged on every such request, and never a 500.
            log.error("%s", problem)
            raise errors.invalid_token("This API cannot verify access tokens.", scheme) from None
        try:
            # Signature and claims may come from the verified-token cache; the
            # proof below is checked on every request.
            verified = await verifier.verify(token)
            # Who was refused, if a later check refuses (the API's audit event).
            request.scope[errors.SUBJECT] = verified.claims.get("sub")
            jkt = bound_jkt(verified.claims)
        except (TokenRefused, ValueError) as refusal:
            log.debug("access token refused: %s", refusal)
            raise errors.invalid_token(str(refusal).capitalize() + ".", scheme) from None
        if scheme == "Bearer" and jkt is not None:
            raise errors.invalid_token("The access token is DPoP-bound: send it with a proof.")
        if scheme == "DPoP":
            if jkt is None:
                # RFC 9449 section 4.3 (12): the proof key must match the token's
                # binding; an unbound token has none to match.
                raise errors.invalid_token("The access token is not DPoP-bound.", scheme)
            try:
                proof = await check_dpop(policy, request, token, jkt)
            except DPoPError as refusal:
                log.debug("DPoP proof refused: %s", refusal)
                raise errors.invalid_proof(refusal.error, refusal.description) from None
            nonce = fresh_nonce(policy, None, proof)
            if nonce is not None:
                response.headers["DPoP-Nonce"] = nonce
        if self.scopes:
            missing = [scope for scope in self.scopes if scope not in verified.scopes]
            if missing:
                raise errors.insufficient_scope(missing, scheme)
        return verified


@functools.cache
def _bearer_with(scopes: tuple[str, ...]) -> BearerToken:
    return BearerToken(scopes)


#: A dependency: the verified access token of the request (any valid one for this API).
VerifiedToken = Annotated[AccessToken, Depends(_bearer_with(()))]


def require_scopes(*scopes: str) -> Any:
    """A dependency: a valid access token holding every one of `scopes` (else 403).

    Use it as `token: Annotated[AccessToken, require_scopes("read:reports")]`
    or in `dependencies=[require_scopes(...)]`; the OpenAPI document lists the scopes.
    """
    return Security(_bearer_with(tuple(scopes)), scopes=list(scopes))
