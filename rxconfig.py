"""Reflex configuration. pingapp's own settings live in pingapp/settings.py."""

import os

import reflex as rx

config = rx.Config(
    app_name="pingapp",
    frontend_port=int(os.environ.get("FRONTEND_PORT", "3000")),
    backend_port=int(os.environ.get("BACKEND_PORT", "8000")),
    # Listen on loopback unless told otherwise (Reflex's default is 0.0.0.0).
    backend_host=os.environ.get("BACKEND_HOST", "127.0.0.1"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(appearance="inherit", accent_color="indigo", radius="large")
        ),
    ],
)
