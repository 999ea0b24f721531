"""The ping page: "Make a Call to the Server"."""

from __future__ import annotations

import reflex as rx
from reflex.event import EventType

from pingapp.components.layout import page
from pingapp.ping.state import PingState


def ping_button(label: str, which: str, handler: EventType[()], **props) -> rx.Component:
    """A ping button that shows a spinner while its call runs."""
    return rx.button(
        rx.spinner(loading=PingState.running == which),
        label,
        id=f"ping-{which}",
        on_click=handler,
        disabled=PingState.running != "",
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
                rx.hstack(rx.spinner(), rx.text("Calling the API…"), id="ping-loading"),
            ),
            rx.heading(
                PingState.message,
                id="ping-message",
                size="4",
                color_scheme=rx.cond(PingState.ok, "green", "red"),
                aria_live="polite",
            ),
            rx.cond(
                PingState.has_answer,
                rx.text(PingState.timing, id="ping-timing", size="2", color_scheme="gray"),
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
            wrap="wrap",
            spacing="3",
        ),
        answer(),
    )
