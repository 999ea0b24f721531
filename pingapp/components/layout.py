"""The page frame: a skip link, the header with the navigation, and the page's
content in one `main` landmark (assets/a11y.css holds the classes used here)."""

from __future__ import annotations

import json
from typing import Literal

import reflex as rx
from reflex.event import EventSpec

from pingapp import routes
from pingapp.auth.state import AuthState, login_url
from pingapp.components.navigate import server_navigation
from pingapp.urls import backend_url

AvatarSize = Literal["1", "2", "3", "4", "5", "6", "7", "8", "9"]

NAV_LINKS = (("Home", routes.HOME), ("Profile", routes.PROFILE), ("Ping", routes.PING))

#: The id the skip link targets.
MAIN_ID = "main"
#: Set just before a sign-in or sign-out leaves the page: the page the browser
#: comes back to focuses its heading instead of leaving focus at the top.
FOCUS_FLAG = "pingapp:focus-main"

# On every page mount: after a navigation inside the app (the path changed) or
# when a sign-in or sign-out asked for it, focus the page's h1, so keyboard and
# screen-reader users start at the new content, not at the top of the document.
# The callback page keeps the flag: the sign-in has not finished there.
_FOCUS_MAIN_HEADING = rf"""() => {{
  const path = window.location.pathname.replace(/\/+$/, "") || "/";
  const moved = window.__pingappPath !== undefined && window.__pingappPath !== path;
  window.__pingappPath = path;
  if (path === {json.dumps(routes.CALLBACK)}) return;
  const asked = window.sessionStorage.getItem({json.dumps(FOCUS_FLAG)}) !== null;
  window.sessionStorage.removeItem({json.dumps(FOCUS_FLAG)});
  if (!asked && !moved) return;
  const heading = document.querySelector("main h1");
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}}"""


def focus_main_after_navigation() -> EventSpec:
    """Ask the next page the app shows to focus its heading (before a sign-in or
    sign-out sends the browser away)."""
    # A function compiled into the page (rx.call_script would need eval).
    return rx.call_function(f"() => window.sessionStorage.setItem({json.dumps(FOCUS_FLAG)}, '1')")


def user_avatar(size: AvatarSize, alt: str | rx.Var[str], **props) -> rx.Component:
    """The signed-in user's picture (`alt` names it), or their initial when there is none."""
    return rx.avatar(
        src=AuthState.user_picture,
        fallback=AuthState.user_name[:1],
        # Radix passes it on to the <img>; Reflex's Avatar has no `alt` prop of its own.
        custom_attrs={"alt": alt},
        size=size,
        radius="full",
        **props,
    )


def log_in_button(return_to: str, **props) -> rx.Component:
    """A link to the login step (an HTTP route: nothing happens over the websocket
    until the browser is back), which returns to `return_to`. A plain href, so it
    works from the first paint, before the page is hydrated."""
    return rx.button(
        rx.el.a(
            "Log In",
            href=login_url(backend_url(), return_to),
            # A full page load: in one-port set-ups /auth is on the app's own origin.
            reload_document=True,
            on_click=focus_main_after_navigation(),
        ),
        as_child=True,
        **props,
    )


def color_mode_toggle() -> rx.Component:
    return rx.color_mode.button(
        variant="ghost",
        id="color-mode",
        aria_label=rx.color_mode_cond("Switch to dark mode", "Switch to light mode"),
    )


def navbar(route: str) -> rx.Component:
    """The tutorial's navbar: Home, Profile, Ping, and Log In / Log Out, after a
    "Skip to content" link (the first tab stop)."""
    return rx.el.header(
        # A plain fragment link (rx.el.a is React Router's Link): the browser moves
        # the focus to <main>.
        rx.el.a(
            "Skip to content",
            href=f"#{MAIN_ID}",
            reload_document=True,
            id="skip-link",
            class_name="skip-link",
        ),
        rx.hstack(
            rx.link(
                rx.hstack(
                    rx.icon("radio-tower", size=22, aria_hidden="true"),
                    rx.text("pingapp", as_="span", size="5", weight="bold"),
                    align="center",
                ),
                href=routes.HOME,
                underline="none",
                color_scheme="gray",
                high_contrast=True,
            ),
            rx.el.nav(
                rx.hstack(
                    *[
                        rx.link(label, href=href, id=f"nav-{label.lower()}", size="3")
                        for label, href in NAV_LINKS
                    ],
                    spacing="4",
                ),
                aria_label="Main",
                display=["none", "flex"],
            ),
            rx.spacer(),
            rx.cond(
                AuthState.signed_in,
                rx.hstack(
                    user_avatar("2", alt=f"Signed in as {AuthState.user_name}"),
                    # The avatar's text alternative says the same to screen readers.
                    rx.text(
                        AuthState.user_name,
                        id="nav-user",
                        display=["none", "block"],
                        aria_hidden="true",
                    ),
                    rx.button(
                        "Log Out",
                        id="qsLogoutBtn",
                        on_click=[focus_main_after_navigation(), AuthState.logout],
                        loading=AuthState.busy,
                        variant="soft",
                    ),
                    align="center",
                ),
                log_in_button(route, id="qsLoginBtn"),
            ),
            color_mode_toggle(),
            align="center",
            spacing="4",
            width="100%",
        ),
        # Phone widths: the same links on a row of their own.
        rx.el.nav(
            rx.hstack(
                *[rx.link(label, href=href, size="2") for label, href in NAV_LINKS],
                spacing="4",
                padding_top="0.5em",
            ),
            aria_label="Main",
            display=["flex", "none"],
        ),
        padding_x="1.25em",
        padding_y="0.75em",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        position="sticky",
        top="0",
        z_index="10",
        background_color=rx.color("gray", 1),
    )


def sign_in_error(route: str) -> rx.Component:
    """What went wrong with signing in, and the way forward; shown once the page's
    on_load handlers ran (before that the tab's earlier error may still be there)."""
    return rx.cond(
        rx.State.is_hydrated & (AuthState.error_title != ""),
        rx.callout.root(
            rx.callout.icon(rx.icon("triangle-alert", aria_hidden="true")),
            rx.vstack(
                rx.text(AuthState.error_title, weight="bold", id="auth-error-title"),
                rx.text(AuthState.error_detail, id="auth-error-detail"),
                rx.hstack(
                    # Indigo and gray, not the callout's red: white on red-9 is 3.9:1.
                    log_in_button(route, size="1", color_scheme="indigo", id="auth-error-login"),
                    rx.button(
                        "Dismiss",
                        size="1",
                        variant="soft",
                        color_scheme="gray",
                        high_contrast=True,
                        on_click=AuthState.dismiss_error,
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
            high_contrast=True,
            id="audience-warning",
            width="100%",
        ),
    )


def page(*children: rx.Component, route: str) -> rx.Component:
    """A page of the app at `route` (where Log In comes back to): the header and a
    readable column of content, whose first child is the page's one h1. The
    sign-in error and the audience warning stand right under that heading."""
    heading, *rest = children
    return rx.box(
        navbar(route),
        rx.el.main(
            rx.container(
                rx.vstack(
                    heading,
                    sign_in_error(route),
                    audience_warning(),
                    *rest,
                    spacing="5",
                    padding_y="2em",
                    width="100%",
                ),
                size="3",
            ),
            id=MAIN_ID,
            tab_index=-1,
            on_mount=rx.call_function(_FOCUS_MAIN_HEADING),
        ),
        server_navigation(),
        min_height="100vh",
    )
