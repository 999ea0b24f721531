"""Reflex configuration. pingapp's own settings live in pingapp/settings.py.

Ports are given on the command line by the Makefile (FRONTEND_PORT, BACKEND_PORT).
"""

import os

import reflex as rx

config = rx.Config(
    app_name="pingapp",
    # Listen on loopback unless told otherwise (Reflex's default is 0.0.0.0).
    backend_host=os.environ.get("BACKEND_HOST", "127.0.0.1"),
    # Reflex's own routes (/_event, /ping, /_health, ...) go under /_reflex: a
    # bare /ping would shadow the app's Ping page wherever one port serves both.
    backend_path="/_reflex",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="inherit", accent_color="indigo", radius="large")
        ),
    ],
)
