"""Reflex configuration. pingapp's own settings live in pingapp/settings.py.

Ports are given on the command line by the Makefile (FRONTEND_PORT, BACKEND_PORT).
"""

import os
from urllib.parse import urlsplit

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

# Only the app's own pages may talk to the backend with credentials. Reflex's
# default ("*") echoes any Origin with Access-Control-Allow-Credentials and lets any
# Origin open the event websocket (SECURITY.md 30). The app's origin is where the
# browser loads it (deploy_url, which `reflex run` sets from --frontend-port);
# REFLEX_CORS_ALLOWED_ORIGINS (comma-separated) overrides it.
if "REFLEX_CORS_ALLOWED_ORIGINS" not in os.environ and config.deploy_url:
    _own = urlsplit(config.deploy_url)
    config.cors_allowed_origins = [f"{_own.scheme}://{_own.netloc}".lower()]
