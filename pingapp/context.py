"""The application context: everything the handlers share, built once.

The settings, the shared HTTP client, the session vault, the OIDC client, the
API's token verifier and DPoP policy, the token allowlist, the app's own URLs and
the tab notifier live in one `AppContext`, built by the backend's lifespan
(`serve_context`) and reached through one accessor, `context()`. Tests install
their own with `use_context`.

One issuer, one discovery and one key store: the sign-in (`oidc`) and the API
(`verifier`) share them, and so the failure cooldown (AUTH_FAILURE_COOLDOWN).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

import httpx2
from reflex.config import get_config
from starlette.types import ASGIApp

from pingapp import telemetry
from pingapp.api.dpop import DPoPPolicy, build_dpop_policy
from pingapp.api.security import NotConfigured, build_verifier
from pingapp.api.verifier import TokenVerifier
from pingapp.dpop import NonceMemory
from pingapp.oidc.client import OIDCClient
from pingapp.oidc.discovery import Discovery
from pingapp.oidc.session import Vault, build_vault
from pingapp.outbound.allowlist import Allowlist
from pingapp.outbound.http import http_client_lifespan
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
    #: The one outbound HTTP client (`pingapp.outbound.http`).
    client: httpx2.AsyncClient
    vault: Vault
    oidc: OIDCClient
    #: The API's access-token check (None without AUTH_AUDIENCE: every request is
    #: refused with a clear reason) and its DPoP policy (`pingapp.api`).
    verifier: TokenVerifier | None
    dpop_policy: DPoPPolicy
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
    redis_url: str | None = None,
    sign_out_tabs: TabNotifier = _no_tabs,
    monotonic: Callable[[], float] = time.monotonic,
) -> AppContext:
    """A context on `client`; what is not given comes from the settings and Reflex's
    config (`redis_url`: the DPoP replay cache's; REFLEX_REDIS_URL). `monotonic`:
    the discovery's and key store's clock (injected by tests)."""
    settings = settings or get_settings()
    backend = (backend or backend_url()).rstrip("/")
    if redis_url is None:
        redis_url = get_config().redis_url
    issuer = settings.effective_issuer(backend)
    discovery = Discovery(
        client, issuer, failure_cooldown=settings.auth_failure_cooldown, monotonic=monotonic
    )
    keys = discovery.key_store(
        algorithms=settings.auth_algorithms,
        fetch_timeout=settings.key_fetch_timeout,
        monotonic=monotonic,
    )
    try:
        verifier = build_verifier(
            settings, backend=backend, client=client, discovery=discovery, keys=keys
        )
    except NotConfigured:
        verifier = None
    return AppContext(
        settings=settings,
        client=client,
        vault=vault or build_vault(settings),
        oidc=OIDCClient(client, settings, issuer, discovery=discovery, keys=keys),
        verifier=verifier,
        dpop_policy=build_dpop_policy(settings, backend=backend, redis_url=redis_url),
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
        with telemetry.keyed_by(installed.vault.reference):
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
