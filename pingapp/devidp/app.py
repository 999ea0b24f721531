"""The embedded provider as a Starlette app: its routes, and `create_idp` to build it.

Each route reads the request on the event loop (`adapter.py`) and runs its handler in
a worker thread: discovery and keys, `/authorize` and `/consent` (`interaction.py`),
`/login` (`signin.py`), `/logout` (`logout.py`), `/par` (`par.py`), `/token` (with
DPoP proofs, `proofs.py`), and authlib's `/revoke` and `/userinfo` (`provider.py`).
A request body over `MAX_BODY_BYTES` gets 413 before anything reads it
(`pingapp.web.bodylimit`). The default clients (the app's and the API docs') are
registered here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pingapp.devidp import pages
from pingapp.devidp.adapter import HttpIn, is_bad_input, read_request
from pingapp.devidp.backchannel import LogoutDelivery
from pingapp.devidp.config import (
    DOCS_REDIRECT_PATH,
    IdpSettings,
    frontend_origins,
    get_idp_settings,
)
from pingapp.devidp.discovery import metadata
from pingapp.devidp.interaction import Interaction
from pingapp.devidp.keys import SigningKeys, load_signing_keys
from pingapp.devidp.logout import sign_out
from pingapp.devidp.models import Client
from pingapp.devidp.provider import Provider
from pingapp.devidp.signin import sign_in
from pingapp.devidp.storage import Store, store_for
from pingapp.routes import BACKCHANNEL_LOGOUT, CALLBACK
from pingapp.settings import EMBEDDED_DOCS_CLIENT_ID
from pingapp.web.bodylimit import MAX_BODY_BYTES, BodySizeLimit

log = logging.getLogger("pingapp.devidp")


def _endpoint(provider: Provider, handler: Callable[[HttpIn], Response]) -> Callable[..., Any]:
    def guarded(http: HttpIn) -> Response:
        try:
            return handler(http)
        except ValueError as error:
            if not is_bad_input(error):
                raise
            body = {"error": "invalid_request", "error_description": "Characters not allowed."}
            return JSONResponse(body, status_code=400, headers={"Cache-Control": "no-store"})

    async def endpoint(request: Request) -> Response:
        http = await read_request(request, provider.url, provider.trusted_proxies)
        # authlib and the store are synchronous (Redis calls block): off the loop.
        return await run_in_threadpool(guarded, http)

    return endpoint


def build_app(provider: Provider) -> Starlette:
    flow = Interaction(provider)
    server = provider.server

    async def discovery(request: Request) -> Response:
        return JSONResponse(metadata(provider), headers={"Cache-Control": "max-age=300"})

    async def jwks(request: Request) -> Response:
        return JSONResponse(provider.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    async def avatar(request: Request) -> Response:
        # Any name gets its avatar: the answer must not tell which users exist.
        name = request.path_params["name"]
        return Response(
            pages.avatar_svg(name),
            media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def revoke(http: HttpIn) -> Response:
        return server.create_endpoint_response("revocation", http)

    def userinfo(http: HttpIn) -> Response:
        if "authorization" not in http.headers:
            # RFC 6750 section 3.1: no credentials, no error code.
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="idp"'})
        return server.create_endpoint_response("userinfo", http)

    def route(path: str, handler: Callable[[HttpIn], Response], methods: list[str]) -> Route:
        return Route(path, _endpoint(provider, handler), methods=methods)

    get_post = ["GET", "POST"]
    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/.well-known/oauth-authorization-server", discovery),
            Route("/.well-known/jwks.json", jwks),
            Route("/avatar/{name}.svg", avatar),
            route("/authorize", flow.authorize, get_post),
            route("/login", partial(sign_in, flow), get_post),
            route("/consent", flow.consent, get_post),
            route("/logout", partial(sign_out, flow), get_post),
            route("/token", provider.proofs.token_response, ["POST"]),
            route("/par", provider.pushed.endpoint, ["POST"]),
            route("/revoke", revoke, ["POST"]),
            route("/userinfo", userinfo, get_post),
        ],
        # Every form (token, PAR, revoke, sign-in, consent, sign-out) is small: a larger
        # body is refused before it is read into memory or parsed (docs/security.md item 50).
        middleware=[Middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)],
    )
    app.state.provider = provider
    return app


def default_client(client_id: str, secret: str | None, backend: str | None = None) -> Client:
    """The app's own client: redirect and post-logout URIs of dev, prod and static set-ups,
    and the back-channel logout URI `{backend}/auth/backchannel-logout` (with `sid`).

    Only the app's `/callback` pages (and IDP_REDIRECT_URIS): the API docs have a
    client of their own (`docs_client`). `backend` defaults to this backend's URL.
    """
    if backend is None:
        from pingapp.urls import backend_url

        backend = backend_url()
    settings = get_idp_settings()
    origins = frontend_origins()
    return Client(
        client_id=client_id,
        redirect_uris=tuple(
            dict.fromkeys([*(f"{o}{CALLBACK}" for o in origins), *settings.redirect_uris])
        ),
        post_logout_redirect_uris=tuple(
            dict.fromkeys([*(f"{o}/" for o in origins), *settings.post_logout_redirect_uris])
        ),
        secret=secret,
        # The app receives Logout Tokens on the backend (as `/auth/login`).
        backchannel_logout_uri=f"{backend.rstrip('/')}{BACKCHANNEL_LOGOUT}",
        backchannel_logout_session_required=True,
    )


def docs_client(backend: str) -> Client:
    """The API docs' client (`EMBEDDED_DOCS_CLIENT_ID`): public (PKCE, no secret), and its only
    redirect URIs are the OpenAPI page's `/api/docs/oauth2-redirect` on the backend's
    origins; no post-logout URIs."""
    origins = [backend.rstrip("/"), *frontend_origins()]
    return Client(
        client_id=EMBEDDED_DOCS_CLIENT_ID,
        redirect_uris=tuple(dict.fromkeys(f"{o}{DOCS_REDIRECT_PATH}" for o in origins)),
    )


def create_idp(
    *,
    issuer: str | None = None,
    settings: IdpSettings | None = None,
    clients: list[Client] | None = None,
    audiences: list[str] | None = None,
    store: Store | None = None,
    keys: SigningKeys | None = None,
    clock: Callable[[], float] = time.time,
    logout_delivery: LogoutDelivery | None = None,
    trusted_proxies: Sequence[IPv4Network | IPv6Network] | None = None,
) -> Starlette:
    """The provider as an ASGI app, to mount at `/idp` (its issuer's path).

    Every argument defaults to the configuration (pingapp's settings and `IDP_*`);
    `clock` decides every expiry the provider keeps (codes, pushed requests,
    transactions, sessions, grants), sign-in times and `max_age`, and the sign-in
    throttle: tests move it instead of waiting; `logout_delivery` sends back-channel
    Logout Tokens (its own httpx client, 3 attempts within 10 s, by default);
    `trusted_proxies` (TRUSTED_PROXIES by default) are the proxies whose
    `X-Forwarded-For` names the client the sign-in throttle counts.
    """
    from pingapp.settings import get_settings
    from pingapp.urls import backend_url

    app_settings = get_settings()
    settings = settings or get_idp_settings()
    if issuer is None:
        issuer = app_settings.effective_issuer(backend_url())
    if clients is None:
        secret = app_settings.auth_client_secret
        clients = [
            default_client(
                app_settings.auth_client_id,
                secret.get_secret_value() if secret else None,
                backend_url(),
            ),
            docs_client(backend_url()),
        ]
    if audiences is None:
        audiences = [a for a in [app_settings.auth_audience, *settings.audiences] if a]
    if keys is None:
        pem = settings.signing_key.get_secret_value() if settings.signing_key else None
        keep = max(settings.access_token_ttl, settings.id_token_ttl) + 60
        keys = load_signing_keys(settings.key_dir, pem, keep_retired_for=keep)
    provider = Provider(
        issuer=issuer,
        settings=settings,
        clients=clients,
        audiences=audiences,
        scopes=app_settings.auth_scope.split(),
        store=store if store is not None else store_for(settings.redis_url),
        keys=keys,
        clock=clock,
        logout_delivery=logout_delivery,
        trusted_proxies=(
            app_settings.trusted_proxies if trusted_proxies is None else trusted_proxies
        ),
    )
    log.info("embedded development OpenID Provider at %s (not for production)", provider.issuer)
    return build_app(provider)
