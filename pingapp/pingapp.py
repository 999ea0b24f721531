"""The app, wired: its pages, the backend in front of Reflex (`pingapp.front`), and
the lifespan tasks that build the application context."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from pingapp import routes, telemetry_instrument, telemetry_setup
from pingapp.api.app import create_api
from pingapp.api.metadata import well_known_route
from pingapp.auth.devices import describe_agent
from pingapp.auth.routes import create_auth_routes
from pingapp.auth.state import AuthState
from pingapp.context import context, serve_context
from pingapp.devidp import embedded_provider_mounts
from pingapp.front import in_front_of
from pingapp.pages.callback import callback
from pingapp.pages.home import home
from pingapp.pages.profile import profile
from pingapp.ping.page import ping
from pingapp.reflex_internals import PacedStatesApp, is_prod, states_dir
from pingapp.settings import get_settings
from pingapp.startup import announce, check_provider_soon, refuse_bad_configuration, summary
from pingapp.tabs import tab_notifier
from pingapp.urls import backend_url, frontend_url, origin_of

# Fail at start, with a short message per bad variable, rather than at first use;
# then say once where sign-in happens and what to register there.
refuse_bad_configuration(
    get_settings(),
    frontend=frontend_url(),
    backend=backend_url(),
    prod=is_prod(),
)
provider_mounts = embedded_provider_mounts()

# Reflex's page states may hold a user's profile: owner-only (docs/security.md 34).
_states = states_dir()
_states.mkdir(mode=0o700, parents=True, exist_ok=True)
_states.chmod(0o700)

# The API, the sign-in hops and the embedded provider. Reflex's own routes
# (/_reflex/...) and pages go to the Reflex app; these prefixes come here first.
# The API's verifier and DPoP policy are the application context's (built with the
# sign-in's, on one discovery and key store per issuer, when the backend starts).
api = create_api(verifier=lambda: context().verifier, dpop=lambda: context().dpop_policy)
backend = Starlette(
    routes=[
        Mount(routes.API, app=api),
        # RFC 9728: the API's protected-resource metadata, where clients look for it.
        well_known_route(api),
        Mount(routes.AUTH, app=create_auth_routes()),
        *provider_mounts,
    ]
)
#: The same, traced once telemetry is on (`pingapp.telemetry_instrument`: a server span per
#: request, continuing the caller's trace; the in-process API calls come here too).
traced_backend = telemetry_instrument.instrument_asgi(backend)


class PingApp(PacedStatesApp):
    """Reflex's app, with pingapp's own backend and layers in front of it
    (`pingapp.front`), and its disk state manager paced (`pingapp.reflex_internals`)."""

    def __call__(self) -> ASGIApp:
        return in_front_of(super().__call__(), traced_backend, frontend_url())


# assets/a11y.css: focus ring, skip link, reduced motion, dark-mode hover contrast.
app = PingApp(stylesheets=["/a11y.css"])


@contextlib.asynccontextmanager
async def application_context() -> AsyncIterator[None]:
    """The application context (`pingapp.context`) for as long as the backend runs.
    The pings and the sign-in call this backend's own /api and /idp: those are
    answered in-process (same client, same auth flow, no TCP round trip to
    ourselves); every other origin goes over the network."""
    async with serve_context(
        in_process={origin_of(backend_url()): traced_backend}, sign_out_tabs=tab_notifier(app)
    ) as ctx:
        text = summary(
            ctx.settings,
            frontend=ctx.frontend_url,
            backend=ctx.backend_url,
            embedded=bool(provider_mounts),
        )
        if announce(text, _states):
            check_provider_soon(ctx)
        # ua-parser loads its rules at the first parse (~0.1 s): in a thread, before the
        # first sessions list would do it on the event loop.
        await asyncio.to_thread(describe_agent, "Mozilla/5.0")
        yield


# Telemetry first: set up from OTEL_* before the shared client is opened (and
# instrumented), shut down (flushed) last.
app.register_lifespan_task(telemetry_setup.lifespan)
app.register_lifespan_task(application_context)

app.add_page(home, route=routes.HOME, title="pingapp", on_load=AuthState.restore)
app.add_page(ping, route=routes.PING, title="Ping · pingapp", on_load=AuthState.restore)
app.add_page(
    profile,
    route=routes.PROFILE,
    title="Profile · pingapp",
    on_load=[AuthState.restore, AuthState.require_sign_in],
)
app.add_page(
    callback,
    route=routes.CALLBACK,
    title="Signing in · pingapp",
    on_load=AuthState.handle_callback,
    # The code and state are in this page's URL: never send it as a Referer.
    meta=[{"name": "referrer", "content": "no-referrer"}],
)
