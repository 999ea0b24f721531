"""The FastAPI sub-app: routes of the protected API.

It is mounted at `/api` (see `pingapp.pingapp`), so its routes are written
relative to that prefix and its OpenAPI page is `/api/docs`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

import httpx2
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from pingapp.api.dpop import WELL_KNOWN, PolicySource
from pingapp.api.errors import install_error_handlers, insufficient_user_authentication
from pingapp.api.metadata import metadata_route
from pingapp.api.security import (
    NotConfigured,
    VerifiedToken,
    VerifierSource,
    build_verifier,
    challenged,
    require_scopes,
    route_scopes,
    scheme_of,
    security_scheme,
    verifier_of,
)
from pingapp.api.verifier import AccessToken
from pingapp.outbound.http import http_client_lifespan
from pingapp.settings import get_settings
from pingapp.urls import backend_url, origin_of
from pingapp.web.headers import docs_policy, inline_scripts

#: The scope the tutorial's scoped endpoint needs.
READ_MESSAGES = "read:messages"


class Message(BaseModel):
    """Every endpoint answers with one message."""

    message: str


router = APIRouter(tags=["messages"])


@router.get("/public", response_model=Message)
async def public() -> Message:
    """Open to everyone: no token needed."""
    return Message(
        message="Hello from a public endpoint! You don't need to be authenticated to see this."
    )


@router.get("/private", response_model=Message)
async def private(token: VerifiedToken) -> Message:
    """Any valid access token for this API."""
    del token  # checked by the dependency; the route needs no claim
    return Message(
        message="Hello from a private endpoint! You need to be authenticated to see this."
    )


@router.get("/private-scoped", response_model=Message)
async def private_scoped(
    token: Annotated[AccessToken, require_scopes(READ_MESSAGES)],
) -> Message:
    """A valid access token holding the scope `read:messages`."""
    del token
    return Message(
        message=(
            "Hello from a private endpoint! You need to be authenticated "
            "and have a scope of read:messages to see this."
        )
    )


@router.get(
    "/private-recent",
    response_model=Message,
    responses={401: {"description": "No sign-in recent enough (RFC 9470 step-up)"}},
)
async def private_recent(token: VerifiedToken, request: Request) -> Message:
    """A valid access token from a sign-in at most API_RECENT_AUTH_MAX_AGE seconds
    old (its `auth_time`); otherwise 401 `insufficient_user_authentication` with
    `max_age`, and the client signs the user in again (RFC 9470)."""
    max_age = get_settings().api_recent_auth_max_age
    auth_time = token.claims.get("auth_time")
    fresh = isinstance(auth_time, int | float) and not isinstance(auth_time, bool)
    if not fresh or time.time() - float(auth_time) > max_age:  # type: ignore[arg-type]
        refusal = insufficient_user_authentication(max_age, scheme_of(request))
        raise challenged(refusal, request)
    return Message(
        message=("Hello from a private endpoint! You signed in recently enough to see this.")
    )


def _own_origins() -> list[str]:
    """The app's own frontend and backend origins, as Reflex knows them."""
    from reflex.config import get_config

    config = get_config()
    urls = [config.deploy_url, config.api_url]
    return sorted({origin_of(url) for url in urls if url})


def _with_own_policy(page: HTMLResponse, connect: list[str] | None = None) -> HTMLResponse:
    """A Swagger UI page with its own Content-Security-Policy: Swagger UI's files
    from this origin, the page's inline script (written here, from the settings)
    by its hash, no 'unsafe-eval', no framing (`pingapp.web.headers.docs_policy`)."""
    page.headers["Content-Security-Policy"] = docs_policy(
        inline_scripts(bytes(page.body).decode()), connect or []
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    # The redirect page's URL holds the authorization code.
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


async def _token_endpoint_origin(request: Request) -> list[str]:
    """The provider's token endpoint origin, which "Authorize" posts the code to
    from the page (none when the provider cannot be reached: the schema then has
    placeholder URLs too)."""
    with contextlib.suppress(
        httpx2.HTTPError, httpx2.InvalidURL, ValueError, KeyError, TypeError, NotConfigured
    ):
        token = (await verifier_of(request).discover()).get("token_endpoint")
        if isinstance(token, str) and token.startswith(("https://", "http://")):
            return [origin_of(token)]
    return []


def _docs_router(api: FastAPI) -> APIRouter:
    """`/openapi.json` and `/docs`, whose "Authorize" signs in with code + PKCE."""
    docs = APIRouter(include_in_schema=False)

    @docs.get("/openapi.json")
    async def openapi(request: Request) -> JSONResponse:
        schema: dict[str, Any] = dict(api.openapi())
        root = request.scope.get("root_path", "")
        if root:
            schema["servers"] = [{"url": root}]
        # The flow's URLs come from the provider's discovery document; without it
        # (provider down, unsafe document, API not configured) the schema is
        # served with placeholder URLs.
        metadata = None
        with contextlib.suppress(
            httpx2.HTTPError, httpx2.InvalidURL, ValueError, KeyError, TypeError, NotConfigured
        ):
            metadata = await verifier_of(request).discover()
        schema = security_scheme(schema, metadata)
        return JSONResponse(schema)

    @docs.get("/docs")
    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        settings = get_settings()
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{api.title} - docs",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            # Served from here, not a CDN: the docs work offline too.
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
            # A public client: PKCE instead of a secret, which a browser cannot keep.
            # Its own client (API_DOCS_CLIENT_ID; the embedded provider's
            # `pingapp-docs`), whose registered redirect URI is this page's.
            init_oauth={
                "clientId": settings.docs_client_id,
                "usePkceWithAuthorizationCodeGrant": True,
                "scopes": " ".join(["openid", *route_scopes(api.openapi())]),
                "additionalQueryStringParams": settings.audience_params(),
            },
            # No badge from swagger.io's validator: it would send the schema's URL
            # there, and the page's policy loads nothing from other sites.
            swagger_ui_parameters={"validatorUrl": None},
        )
        return _with_own_policy(page, await _token_endpoint_origin(request))

    @docs.get("/docs/oauth2-redirect")
    async def swagger_redirect() -> HTMLResponse:
        return _with_own_policy(get_swagger_ui_oauth2_redirect_html())

    return docs


def create_api(
    verifier: VerifierSource | None = None,
    *,
    cors_origins: list[str] | None = None,
    dpop: PolicySource | None = None,
) -> FastAPI:
    """Build the API app; Reflex mounts it at `/api`.

    `verifier` and `dpop`: the app passes functions giving its context's (one
    discovery and key store per issuer, shared with the sign-in: `pingapp.context`);
    a caller may pass its own objects (and owns them). Without them, the API served
    on its own builds both from the settings (`build_verifier`, `build_dpop_policy`).
    `cors_origins` defaults to CORS_ORIGINS, or the app's own origins. The app
    in front serves the RFC 9728 metadata with `pingapp.api.metadata.well_known_route`.
    """

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs when the API is served on its own (under Reflex's mount, the app's
        # context gives the client and the verifier): one client for its outbound
        # calls, and the verifier on it.
        async with http_client_lifespan() as client:
            if api.state.token_verifier is None:
                with contextlib.suppress(NotConfigured):  # each request says so
                    api.state.token_verifier = build_verifier(
                        get_settings(), backend=backend_url(), client=client
                    )
            yield

    api = FastAPI(
        title="pingapp API",
        summary="The protected API of the pingapp tutorial.",
        version="1.0.0",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry would export each request's query string
        # (an `access_token` sent in the URL, the docs' `code`) whenever global
        # providers are set: pingapp's telemetry traces the API without them.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api.state.token_verifier = verifier
    api.state.dpop_policy = dpop
    install_error_handlers(api)
    api.include_router(router)
    api.router.routes.append(metadata_route(api, WELL_KNOWN))
    api.include_router(_docs_router(api))
    # Swagger UI's files, as the fastapi-offline package ships them.
    api.mount(
        "/docs/assets",
        StaticFiles(directory=str(resources.files("fastapi_offline") / "static")),
        name="docs-assets",
    )
    origins = cors_origins if cors_origins is not None else get_settings().cors_origins
    if cors_origins is None and not origins:
        origins = _own_origins()
    api.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET"],
        allow_headers=["Authorization", "DPoP"],
        # So the frontend can read why a call was refused (RFC 6750 challenge),
        # and the server nonce its next proof needs.
        expose_headers=["WWW-Authenticate", "DPoP-Nonce"],
        # Bearer tokens, not cookies: no credentials mode.
        allow_credentials=False,
        max_age=600,
    )
    return api
