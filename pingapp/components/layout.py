"""The page frame: navbar on top, content in a centred column."""

from __future__ import annotations

from typing import Literal

import reflex as rx

from pingapp import routes
from pingapp.auth.state import AuthState

AvatarSize = Literal["1", "2", "3", "4", "5", "6", "7", "8", "9"]

NAV_LINKS = (("Home", routes.HOME), ("Profile", routes.PROFILE), ("Ping", routes.PING))


def user_avatar(size: AvatarSize, **props) -> rx.Component:
    """The signed-in user's picture, or their initial when there is none."""
    return rx.avatar(
        src=AuthState.user_picture,
        fallback=AuthState.user_name[:1],
        size=size,
        radius="full",
        **props,
    )


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
                rx.hstack(
                    user_avatar("2"),
                    rx.text(AuthState.user_name, id="nav-user", display=["none", "block"]),
                    rx.button(
                        "Log Out",
                        id="qsLogoutBtn",
                        on_click=AuthState.logout,
                        loading=AuthState.busy,
                        variant="soft",
                    ),
                    align="center",
                ),
                rx.button(
                    "Log In", id="qsLoginBtn", on_click=AuthState.login(""), loading=AuthState.busy
                ),
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


def sign_in_error() -> rx.Component:
    """What went wrong with signing in, and the way forward."""
    return rx.cond(
        AuthState.error_title != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle-alert")),
            rx.vstack(
                rx.text(AuthState.error_title, weight="bold", id="auth-error-title"),
                rx.text(AuthState.error_detail, id="auth-error-detail"),
                rx.hstack(
                    rx.button("Log In", size="1", on_click=AuthState.login("")),
                    rx.button(
                        "Dismiss", size="1", variant="soft", on_click=AuthState.dismiss_error
                    ),
                ),
                spacing="2",
            ),
            color_scheme="red",
            role="alert",
            id="auth-error",
            width="100%",
        ),
    )


def audience_warning() -> rx.Component:
    """No AUTH_AUDIENCE: say why the private pings will fail, and what to do."""
    return rx.cond(
        AuthState.audience_missing,
        rx.callout(
            "No API audience is configured (AUTH_AUDIENCE is empty): the provider will "
            "issue an opaque access token that the API cannot verify, so the private "
            "pings will fail. Set AUTH_AUDIENCE to your API's identifier.",
            icon="triangle-alert",
            color_scheme="amber",
            id="audience-warning",
            width="100%",
        ),
    )


def page(*children: rx.Component) -> rx.Component:
    """A page of the app: the navbar and a readable column of content."""
    return rx.box(
        navbar(),
        rx.container(
            rx.vstack(
                sign_in_error(),
                audience_warning(),
                *children,
                spacing="5",
                padding_y="2em",
                width="100%",
            ),
            size="3",
        ),
        min_height="100vh",
    )
