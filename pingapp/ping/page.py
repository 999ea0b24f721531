"""The ping page: "Make a Call to the Server"."""

from __future__ import annotations

import reflex as rx
from reflex.event import EventType

from pingapp import routes
from pingapp.auth.state import AuthState, login_url
from pingapp.components.json_block import json_block
from pingapp.components.layout import page
from pingapp.ping.state import PingState
from pingapp.urls import backend_url


def ping_button(label: str, which: str, handler: EventType[()], **props) -> rx.Component:
    """A ping button that shows a spinner while its call runs.

    While a ping runs the buttons are aria-disabled, not disabled: a disabled
    button would drop the keyboard focus of whoever pressed it. The handlers
    ignore a press while a ping runs."""
    return rx.button(
        rx.spinner(loading=PingState.running == which, aria_hidden="true"),
        label,
        id=f"ping-{which}",
        on_click=handler,
        aria_disabled=rx.cond(PingState.running != "", "true", "false"),
        size="3",
        **props,
    )


def answer() -> rx.Component:
    """The last answer: the message, its status and how long it took."""
    return rx.card(
        rx.vstack(
            rx.text("Answer", size="2", weight="bold", color_scheme="gray"),
            rx.cond(
                PingState.running != "",
                rx.hstack(
                    rx.spinner(aria_hidden="true"),
                    rx.text("Calling the API…"),
                    id="ping-loading",
                    align="center",
                ),
            ),
            # A live region, always in the page: screen readers announce each answer
            # (message and timing, read together) where it appears, and the focus stays
            # on the button that was pressed. A fast answer replaces the last one in a
            # single update, so the same message again is announced by its new timing.
            rx.vstack(
                rx.text(
                    PingState.message,
                    id="ping-message",
                    size="4",
                    weight="medium",
                    color_scheme=rx.cond(PingState.ok, "green", "red"),
                ),
                rx.cond(
                    PingState.has_answer,
                    rx.text(PingState.timing, id="ping-timing", size="2", color_scheme="gray"),
                ),
                id="ping-answer",
                role="status",
                aria_live="polite",
                aria_atomic="true",
                aria_busy=rx.cond(PingState.running != "", "true", "false"),
                # Counts answers (benchmarks and tests wait for the next one).
                custom_attrs={"data-answer": PingState.answers},
                spacing="2",
            ),
            rx.cond(
                PingState.status_code == 403,
                rx.button(
                    rx.el.a(
                        "Log in again and grant access",
                        href=login_url(backend_url(), routes.PING, prompt="consent"),
                        reload_document=True,
                    ),
                    as_child=True,
                    id="review-permissions",
                    size="2",
                    variant="soft",
                ),
            ),
            rx.cond(
                PingState.step_up,
                rx.button(
                    rx.el.a(
                        "Sign in again",
                        href=login_url(backend_url(), routes.PING, step_up=True),
                        reload_document=True,
                    ),
                    as_child=True,
                    id="step-up",
                    size="2",
                    variant="soft",
                ),
            ),
            rx.cond(
                (PingState.message == "") & (PingState.running == ""),
                rx.text("Press a button to call the API.", color_scheme="gray"),
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def ping() -> rx.Component:
    return page(
        rx.heading("Make a Call to the Server", size="7"),
        rx.text(
            "The public endpoint answers anyone. The private ones need you to be "
            "signed in; the app attaches your access token on the server.",
            color_scheme="gray",
        ),
        rx.hstack(
            ping_button("Call Public", "public", PingState.ping_public),
            rx.cond(
                AuthState.signed_in,
                rx.fragment(
                    ping_button("Call Private", "private", PingState.ping_private),
                    ping_button(
                        "Call Private Scoped", "scoped", PingState.ping_scoped, variant="outline"
                    ),
                    ping_button(
                        "Call Private (recent sign-in)",
                        "recent",
                        PingState.ping_recent,
                        variant="outline",
                    ),
                ),
                rx.text("Log in to call the private endpoints.", color_scheme="gray"),
            ),
            wrap="wrap",
            spacing="3",
            align="center",
        ),
        answer(),
        rx.cond(AuthState.signed_in, token_inspector()),
        route=routes.PING,
    )


def token_inspector() -> rx.Component:
    """The access token as the API will see it: decoded, never the raw string."""
    return rx.card(
        rx.vstack(
            rx.heading("Your access token", as_="h2", size="4"),
            rx.text(
                "It stays on the server; this is what it says.",
                size="2",
                color_scheme="gray",
            ),
            token_binding(),
            rx.cond(
                AuthState.token_is_jwt,
                rx.vstack(
                    rx.hstack(
                        rx.text("Audience", weight="bold", size="2"),
                        rx.foreach(
                            AuthState.token_audience,
                            lambda aud: rx.badge(aud, variant="soft", color_scheme="blue"),
                        ),
                        wrap="wrap",
                        id="token-audience",
                    ),
                    rx.hstack(
                        rx.text("Scopes", weight="bold", size="2"),
                        rx.foreach(AuthState.scopes, lambda scope: rx.badge(scope)),
                        wrap="wrap",
                        id="token-scopes",
                    ),
                    rx.hstack(
                        rx.text("Expires", weight="bold", size="2"),
                        # Plain text: a ticking "in 59 minutes" would load moment.js
                        # (68 KB) after sign-in and re-render every second.
                        rx.text(
                            rx.el.time(AuthState.expires_text, date_time=AuthState.expires_iso),
                            size="2",
                            id="token-expiry",
                        ),
                    ),
                    rx.heading("Header", as_="h3", size="2"),
                    json_block(AuthState.token_header, "token-header"),
                    rx.heading("Claims", as_="h3", size="2"),
                    json_block(AuthState.token_claims, "token-claims"),
                    width="100%",
                ),
                rx.callout(
                    "The provider issued an opaque access token, which the API cannot "
                    "verify: the private pings will fail. This happens when no audience is "
                    "asked for at login. Set AUTH_AUDIENCE to your API's identifier "
                    "(in Auth0: Applications > APIs) and log in again.",
                    icon="triangle-alert",
                    color_scheme="amber",
                    high_contrast=True,
                    id="token-opaque",
                ),
            ),
            width="100%",
        ),
        width="100%",
        id="token-inspector",
    )


def token_binding() -> rx.Component:
    """Whether the access token is DPoP-bound (RFC 9449), and to which key, in words."""
    return rx.hstack(
        rx.text("Binding", weight="bold", size="2"),
        rx.cond(
            AuthState.token_jkt != "",
            rx.text(
                "DPoP-bound: usable only with a proof signed by this server's key, "
                "thumbprint (cnf.jkt) ",
                rx.code(AuthState.token_jkt, id="token-jkt"),
                size="2",
            ),
            rx.text("Bearer: not bound to a key, anyone who holds it can use it", size="2"),
        ),
        wrap="wrap",
        align="baseline",
        id="token-binding",
    )
