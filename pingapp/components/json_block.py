"""A block of indented JSON (claims, headers), wrapped to the page's width."""

from __future__ import annotations

import reflex as rx


def json_block(text: str | rx.Var[str], element_id: str) -> rx.Component:
    return rx.el.pre(
        text,
        id=element_id,
        style={
            "white-space": "pre-wrap",
            "word-break": "break-all",
            "font-size": "0.8em",
            "padding": "0.75em",
            "border-radius": "8px",
            "background": rx.color("gray", 3),
            "width": "100%",
            "margin": "0",
        },
    )
