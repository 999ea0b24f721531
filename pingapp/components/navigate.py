"""Navigations the server asks for, without eval.

A backend event cannot run code in the page without `rx.call_script`, which Reflex
runs with `eval` (and so needs 'unsafe-eval' in the CSP). Instead a handler sets
`AuthState.next_url` (a full page load, replacing the history entry: the provider,
`/auth/session`) or `AuthState.clean_url` (the address bar only: the callback drops
its code and state), and a hidden element below, compiled into the page's
scripts, acts when it mounts. `rx.redirect` stays right for pages of the app.
"""

from __future__ import annotations

import reflex as rx
from reflex.event import EventSpec
from reflex.vars.function import ArgsFunctionOperation, FunctionStringVar

from pingapp.auth.state import AuthState

#: Leaves for `url` once: React may mount an element twice (development mode),
#: and a second load of a one-time URL (`/auth/session`) would find it spent.
_LEAVE_ONCE = """(url) => {
  if (window.__pingappLeavingFor === url) return;
  window.__pingappLeavingFor = url;
  window.location.replace(url);
}"""


def _on_mount(function: str, *args: object) -> EventSpec:
    """Call the page's `function` with `args` (vars are read when it mounts)."""
    call = FunctionStringVar.create(function).call(*args)
    return rx.call_function(ArgsFunctionOperation.create((), call))


def server_navigation() -> rx.Component:
    """Goes where `AuthState.next_url` says, once the page's on_load handlers ran.

    Only then: the state a page load starts from is the tab's last one, and a
    `next_url` left there (the page guard's, before a sign-in) must not send the
    new page anywhere; its on_load handlers (`restore`, `handle_callback`) clear it
    first, and Reflex sets `is_hydrated` after them."""
    return rx.cond(
        rx.State.is_hydrated & (AuthState.next_url != ""),
        rx.el.span(
            hidden=True,
            key=AuthState.next_url,
            on_mount=_on_mount(f"({_LEAVE_ONCE})", AuthState.next_url),
        ),
    )


def address_bar_cleaner() -> rx.Component:
    """On the callback page: replaces the address (code, state) by `clean_url` as
    soon as the sign-in handler sets it, without a page load."""
    return rx.cond(
        AuthState.clean_url != "",
        rx.el.span(
            hidden=True,
            key=AuthState.clean_url,
            on_mount=_on_mount("window.history.replaceState", None, "", AuthState.clean_url),
        ),
    )
