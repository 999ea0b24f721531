"""Home: the tutorial's welcome texts."""

from __future__ import annotations

import reflex as rx
from reflex_components_core.react_router.dom import ReactRouterLink

from pingapp import routes
from pingapp.auth.state import AuthState
from pingapp.components.layout import page
from pingapp.urls import backend_url


def home() -> rx.Component:
    return page(
        rx.heading("Log in, then call a protected API", size="8"),
        rx.text(
            "pingapp signs you in with OpenID Connect, keeps your tokens on the "
            "server, and calls an API that checks them.",
            size="4",
            color_scheme="gray",
        ),
        rx.cond(
            AuthState.signed_in,
            rx.callout(
                "You are logged in! You can now send authenticated requests to your server.",
                icon="circle-check",
                color_scheme="green",
                high_contrast=True,
                id="home-status",
            ),
            rx.callout(
                "You are not logged in! Please Log In to continue.",
                icon="info",
                high_contrast=True,
                id="home-status",
            ),
        ),
        # Links that look like buttons: one tab stop each, not a button inside a link.
        rx.hstack(
            rx.button(
                ReactRouterLink.create("Go to the ping page", to=routes.PING),
                as_child=True,
                size="3",
            ),
            # The API's docs are a page of the backend, not of the app: a full load.
            rx.button(
                rx.el.a(
                    "API documentation",
                    href=f"{backend_url()}{routes.API}/docs",
                    reload_document=True,
                ),
                as_child=True,
                size="3",
                variant="soft",
            ),
            wrap="wrap",
        ),
        route=routes.HOME,
    )
