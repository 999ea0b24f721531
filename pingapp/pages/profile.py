"""Profile: who is signed in (filled in by the sign-in work)."""

from __future__ import annotations

import reflex as rx

from pingapp.auth.state import AuthState
from pingapp.components.layout import page


def profile() -> rx.Component:
    return page(
        rx.heading("Profile", size="7"),
        rx.cond(
            AuthState.signed_in,
            rx.text(AuthState.name, id="profile-name", size="5"),
            rx.callout(
                "You are not logged in. Log in to see your profile.",
                icon="info",
                id="profile-signed-out",
            ),
        ),
    )
