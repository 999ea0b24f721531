"""Profile: who is signed in, and where (sign-in required).

The sessions list (`sessions-list`) shows each of the user's sessions with **Sign
out** (`session-end-<n>`, n the row's index) and offers **Sign out everywhere else**
(`sessions-end-others`); `pingapp.sessions.SessionsState` does the work
(docs/sessions.md)."""

from __future__ import annotations

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState
from pingapp.components.json_block import json_block
from pingapp.components.layout import page, user_avatar
from pingapp.sessions import SessionsState


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


def session_row(
    row: rx.vars.ObjectVar[dict[str, str]], index: rx.vars.NumberVar[int]
) -> rx.Component:
    """One session: browser and system, times, network; "This browser"; Sign out."""
    described = row["browser"] + " on " + row["system"]
    return rx.el.li(
        rx.hstack(
            rx.vstack(
                rx.hstack(
                    rx.text(described, weight="bold", as_="span"),
                    rx.cond(
                        row["current"] != "",
                        rx.badge("This browser", color_scheme="green", variant="surface"),
                    ),
                    spacing="2",
                    align="center",
                    wrap="wrap",
                ),
                rx.text(
                    "Signed in ",
                    rx.el.time(row["signed_in"], date_time=row["signed_in_iso"]),
                    " · last used ",
                    rx.el.time(row["last_used"], date_time=row["last_used_iso"]),
                    " · from ",
                    row["address"],
                    size="2",
                    color_scheme="gray",
                ),
                spacing="1",
            ),
            rx.spacer(),
            rx.button(
                "Sign out",
                id=f"session-end-{index}",
                aria_label=rx.cond(
                    row["current"] != "",
                    "Sign out this browser (" + described + ")",
                    "Sign out " + described,
                ),
                variant="soft",
                color_scheme="red",
                loading=SessionsState.ending == index,
                disabled=(SessionsState.ending >= 0) | SessionsState.ending_others,
                on_click=SessionsState.end_session(index),
            ),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        class_name="session-row",
        style={"padding": "0.5rem 0", "border_bottom": "1px solid var(--gray-a5)"},
    )


def sessions_card() -> rx.Component:
    """Where the user is signed in, with a Sign out per session and for all others."""
    return rx.card(
        rx.vstack(
            rx.heading("Where you are signed in", as_="h2", size="3", id="sessions-heading"),
            rx.el.ul(
                rx.foreach(SessionsState.rows, session_row),
                id="sessions-list",
                aria_labelledby="sessions-heading",
                style={"list_style": "none", "padding": "0", "margin": "0", "width": "100%"},
            ),
            rx.hstack(
                rx.button(
                    "Sign out everywhere else",
                    id="sessions-end-others",
                    variant="outline",
                    color_scheme="red",
                    loading=SessionsState.ending_others,
                    disabled=(SessionsState.ending >= 0) | (SessionsState.others == 0),
                    on_click=SessionsState.end_other_sessions,
                ),
                rx.text(SessionsState.status, id="sessions-status", role="status", size="2"),
                align="center",
                spacing="3",
                wrap="wrap",
            ),
            width="100%",
            spacing="3",
        ),
        width="100%",
        on_mount=SessionsState.load_sessions,
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
                sessions_card(),
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
