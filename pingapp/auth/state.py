"""AuthState: who is signed in. Sign-in itself arrives with the OIDC client."""

from __future__ import annotations

import reflex as rx


class AuthState(rx.State):
    """The session as the page may see it: never a token."""

    signed_in: bool = False
    name: str = ""

    @rx.event
    def login(self):
        """Start a sign-in. Not wired yet: say so instead of pretending."""
        return rx.toast.info(
            "Sign-in is not configured yet in this build of pingapp.",
            id="login-not-configured",
        )

    @rx.event
    def logout(self):
        self.signed_in = False
        self.name = ""
