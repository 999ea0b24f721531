"""RFC 9728 protected-resource metadata of the API.

The document names the API (`resource`, its public URL), who issues its tokens,
the scopes its routes need, and its DPoP stance. RFC 9728 §3.1 serves it for the
resource `https://host/api` at `https://host/.well-known/oauth-protected-resource/api`:
`well_known_route(api)` is that route, for the app in front of the API to mount;
the API also answers at `/api/.well-known/oauth-protected-resource` for use on its own.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.routing import Route

from pingapp.api.dpop import WELL_KNOWN, DPoPPolicy, dpop_policy_of
from pingapp.api.security import NotConfigured, route_scopes, verifier_of
from pingapp.routes import API


def metadata_document(
    policy: DPoPPolicy, resource: str, issuer: str | None, scopes: list[str]
) -> dict[str, Any]:
    """The RFC 9728 §2 document for `resource`."""
    return {
        "resource": resource,
        "authorization_servers": [issuer] if issuer else [],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": list(policy.algs),
        "dpop_bound_access_tokens_required": policy.required,
    }


def _answer(api: FastAPI, request: Request) -> JSONResponse:
    """The document, with the API's policy and verifier (`request.app` may be the outer app)."""
    # The routes' policy and verifier live on the API app, whoever serves this route.
    view = Request({**request.scope, "app": api})
    policy = dpop_policy_of(view)
    try:
        issuer: str | None = verifier_of(view).issuer
    except NotConfigured:
        issuer = None
    scopes = sorted(route_scopes(api.openapi()))
    resource = policy.api_url(request) if policy.public_url else _resource_of(request)
    return JSONResponse(
        metadata_document(policy, resource, issuer, scopes),
        headers={"Cache-Control": "public, max-age=300"},
    )


def _resource_of(request: Request) -> str:
    """Without a public URL: the resource this request asked about (outer route:
    the path after the well-known part; inner route: the API's own base URL)."""
    path = request.scope["path"]
    if path.startswith(WELL_KNOWN + "/"):
        base = str(request.base_url).rstrip("/")
        return base + path[len(WELL_KNOWN) :]
    return DPoPPolicy().api_url(request)


def metadata_route(api: FastAPI, path: str) -> Route:
    """A GET route at `path` serving `api`'s metadata document."""

    async def endpoint(request: Request) -> JSONResponse:
        return _answer(api, request)

    return Route(path, endpoint, methods=["GET"], include_in_schema=False)


def well_known_route(api: FastAPI, mounted_at: str = API) -> Route:
    """The route the app in front mounts: `/.well-known/oauth-protected-resource/api`."""
    return metadata_route(api, WELL_KNOWN + mounted_at)
