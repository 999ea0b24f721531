"""Home: the tutorial's welcome texts."""

from __future__ import annotations

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState
from pingapp.components.layout import page


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
                id="home-status",
            ),
            rx.callout(
                "You are not logged in! Please Log In to continue.",
                icon="info",
                id="home-status",
            ),
        ),
        rx.hstack(
            rx.link(rx.button("Go to the ping page", size="3"), href=routes.PING),
            rx.link(rx.button("API documentation", size="3", variant="soft"), href="/api/docs"),
            wrap="wrap",
        ),
    )
