"""Profile: who is signed in (sign-in required)."""

from __future__ import annotations

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState
from pingapp.components.json_block import json_block
from pingapp.components.layout import page, user_avatar


def profile_card() -> rx.Component:
    return rx.card(
        rx.hstack(
            user_avatar("6", alt=f"Picture of {AuthState.user_name}", id="profile-picture"),
            rx.vstack(
                rx.heading(AuthState.user_name, as_="h2", id="profile-name", size="6"),
                rx.text(AuthState.user_email, id="profile-email", color_scheme="gray"),
                rx.hstack(
                    rx.foreach(
                        AuthState.scopes,
                        lambda scope: rx.badge(scope, variant="surface", role="listitem"),
                    ),
                    wrap="wrap",
                    id="profile-scopes",
                    aria_label="Granted scopes",
                    role="list",
                ),
                spacing="2",
            ),
            spacing="4",
            align="center",
        ),
        width="100%",
    )


def profile() -> rx.Component:
    return page(
        rx.heading("Profile", size="7"),
        rx.cond(
            AuthState.signed_in,
            rx.vstack(
                profile_card(),
                rx.heading("Everything the provider says about you", as_="h2", size="3"),
                json_block(AuthState.claims_json, "profile-claims"),
                width="100%",
                spacing="4",
            ),
            rx.cond(
                AuthState.busy,
                rx.hstack(
                    rx.spinner(aria_hidden="true"),
                    rx.text("Taking you to sign in…", color_scheme="gray"),
                    role="status",
                ),
                rx.callout(
                    "You are not logged in. Log in to see your profile.",
                    icon="info",
                    high_contrast=True,
                    id="profile-signed-out",
                ),
            ),
        ),
        route=routes.PROFILE,
    )
