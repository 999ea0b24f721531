"""Callback: where the provider sends the browser back after sign-in."""

from __future__ import annotations

import reflex as rx

from pingapp.components.layout import page


def callback() -> rx.Component:
    return page(
        rx.center(
            rx.vstack(
                rx.spinner(size="3"),
                rx.text("Signing you in…", color_scheme="gray"),
                align="center",
            ),
            width="100%",
            padding_y="4em",
        ),
    )
