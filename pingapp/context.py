"""The application context: everything the handlers share, built once.

The settings, the shared HTTP client, the session vault, the OIDC client, the
token allowlist, the app's own URLs and the tab notifier live in one
`AppContext`, built by the backend's lifespan (`serve_context`) and reached
through one accessor, `context()`. Tests install their own with `use_context`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

import httpx2
from starlette.types import ASGIApp

from pingapp.allowlist import Allowlist
from pingapp.auth.dpop import NonceMemory
from pingapp.auth.oidc import OIDCClient
from pingapp.auth.session import Vault, build_vault
from pingapp.http import http_client_lifespan
from pingapp.settings import Settings, get_settings
from pingapp.urls import backend_url, frontend_url

#: Shows the signed-out page in the given tabs (Reflex client tokens), except one.
TabNotifier = Callable[[list[str], str], Awaitable[None]]


async def _no_tabs(tabs: list[str], except_token: str) -> None:
    """The notifier of a context without an app (tests, tools): nothing to update."""
    del tabs, except_token


@dataclasses.dataclass(frozen=True)
class AppContext:
    """One backend process's shared objects (see the module docstring)."""

    settings: Settings
    #: The one outbound HTTP client (`pingapp.http`).
    client: httpx2.AsyncClient
    vault: Vault
    oidc: OIDCClient
    #: Where an access token may be sent (API_ALLOWED_ORIGINS).
    allowlist: Allowlist
    #: This backend's base URL, and where the browser loads the app.
    backend_url: str
    frontend_url: str
    sign_out_tabs: TabNotifier = _no_tabs
    #: The latest `DPoP-Nonce` of each API origin (the provider's are the OIDC
    #: client's own: the embedded provider shares the API's origin, not its nonces).
    dpop_nonces: NonceMemory = dataclasses.field(default_factory=NonceMemory)

    @property
    def secure(self) -> bool:
        """Whether the browser reaches the app over https (`__Host-` cookies)."""
        return self.frontend_url.startswith("https://")

    def api_url(self, path: str) -> str:
        """`path` under API_URL (or this backend's `/api`)."""
        return self.settings.api_base_url(self.backend_url) + path


def build_context(
    client: httpx2.AsyncClient,
    *,
    settings: Settings | None = None,
    vault: Vault | None = None,
    backend: str | None = None,
    frontend: str | None = None,
    sign_out_tabs: TabNotifier = _no_tabs,
) -> AppContext:
    """A context on `client`; what is not given comes from the settings and Reflex's config."""
    settings = settings or get_settings()
    backend = (backend or backend_url()).rstrip("/")
    return AppContext(
        settings=settings,
        client=client,
        vault=vault or build_vault(settings),
        oidc=OIDCClient(client, settings, settings.effective_issuer(backend)),
        allowlist=Allowlist(settings.allowed_origins(backend)),
        backend_url=backend,
        frontend_url=(frontend or frontend_url()).rstrip("/"),
        sign_out_tabs=sign_out_tabs,
    )


_current: AppContext | None = None


def context() -> AppContext:
    """The running app's context; only available while the backend runs."""
    if _current is None:
        msg = "the application context is not built (is the backend's lifespan running?)"
        raise RuntimeError(msg)
    return _current


@contextlib.contextmanager
def use_context(installed: AppContext) -> Iterator[AppContext]:
    """Make `installed` the context for the duration of the block (the lifespan; tests)."""
    global _current  # the one process-wide context, by design
    previous, _current = _current, installed
    try:
        yield installed
    finally:
        _current = previous


@contextlib.asynccontextmanager
async def serve_context(
    *,
    in_process: Mapping[str, ASGIApp] | None = None,
    sign_out_tabs: TabNotifier = _no_tabs,
    settings: Settings | None = None,
    vault: Vault | None = None,
) -> AsyncIterator[AppContext]:
    """Open the shared client, build the context on it, install it; close at stop.

    `in_process` maps an origin (this backend's own) to the ASGI app that serves
    it there: calls to it are answered in this process, without a TCP round trip
    to ourselves, and still pass through the same client and its auth flow.
    """
    settings = settings or get_settings()
    async with http_client_lifespan(in_process, http_timeout=settings.http_timeout) as client:
        built = build_context(client, settings=settings, vault=vault, sign_out_tabs=sign_out_tabs)
        with use_context(built):
            yield built
