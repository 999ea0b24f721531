"""The page frame: navbar on top, content in a centred column."""

from __future__ import annotations

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState

NAV_LINKS = (("Home", routes.HOME), ("Profile", routes.PROFILE), ("Ping", routes.PING))


def navbar() -> rx.Component:
    """The tutorial's navbar: Home, Profile, Ping, and Log In / Log Out."""
    return rx.box(
        rx.hstack(
            rx.link(
                rx.hstack(rx.icon("radio-tower", size=22), rx.heading("pingapp", size="5")),
                href=routes.HOME,
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            rx.hstack(
                *[
                    rx.link(label, href=href, id=f"nav-{label.lower()}", size="3")
                    for label, href in NAV_LINKS
                ],
                spacing="4",
                display=["none", "flex"],
            ),
            rx.spacer(),
            rx.cond(
                AuthState.signed_in,
                rx.button("Log Out", id="qsLogoutBtn", on_click=AuthState.logout, variant="soft"),
                rx.button("Log In", id="qsLoginBtn", on_click=AuthState.login),
            ),
            rx.color_mode.button(variant="ghost", id="color-mode"),
            align="center",
            spacing="4",
            width="100%",
        ),
        rx.hstack(
            *[rx.link(label, href=href, size="2") for label, href in NAV_LINKS],
            spacing="4",
            display=["flex", "none"],
            padding_top="0.5em",
        ),
        as_="nav",
        padding_x="1.25em",
        padding_y="0.75em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        position="sticky",
        top="0",
        z_index="10",
        background_color=rx.color("gray", 1),
    )


def page(*children: rx.Component) -> rx.Component:
    """A page of the app: the navbar and a readable column of content."""
    return rx.box(
        navbar(),
        rx.container(
            rx.vstack(*children, spacing="5", padding_y="2em", width="100%"),
            size="3",
        ),
        min_height="100vh",
    )
