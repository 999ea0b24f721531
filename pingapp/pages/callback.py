"""Callback: where the provider sends the browser back after sign-in."""

from __future__ import annotations

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState
from pingapp.components.layout import page
from pingapp.components.navigate import address_bar_cleaner


def callback() -> rx.Component:
    # While the sign-in finishes, a spinner; if it fails, the error callout that
    # every page shows (role="alert") explains why, with a Log In button. Until the
    # handler has run (`is_hydrated`), an error is the tab's earlier one: not shown.
    failed = rx.State.is_hydrated & (AuthState.error_title != "")
    # Opened by hand while signed in (nothing to finish): say so instead of a spinner.
    done = rx.State.is_hydrated & AuthState.signed_in & ~AuthState.busy & ~failed
    return page(
        rx.heading(
            rx.cond(failed, "Sign-in did not finish", rx.cond(done, "Signed in", "Signing you in")),
            size="7",
        ),
        address_bar_cleaner(),
        rx.cond(
            done,
            rx.text(
                "You are already signed in. ",
                rx.link("Go to the home page", href=routes.HOME, id="callback-done"),
            ),
            rx.cond(
                ~failed,
                rx.center(
                    rx.vstack(
                        rx.spinner(size="3", aria_hidden="true"),
                        rx.text("Signing you in…", color_scheme="gray"),
                        align="center",
                        id="callback-pending",
                        role="status",
                    ),
                    width="100%",
                    padding_y="4em",
                ),
                rx.link("Back to the home page", href=routes.HOME),
            ),
        ),
        route=routes.HOME,
    )
