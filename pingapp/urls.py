"""URLs: what counts as a safe one, an origin, and this app's own.

`backend_url()` and `frontend_url()` follow Reflex's config (the port the backend
runs on, the deploy URL); the application context (`pingapp.context`) reads them
once at start.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def http_url(value: str, name: str) -> str:
    """Check that `value` is an absolute http(s) URL; return it unchanged."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"{name} must be an absolute http:// or https:// URL, got {value!r}"
        raise ValueError(msg)
    return value


def is_loopback_host(host: str | None) -> bool:
    """Whether `host` is `localhost`, an address in 127.0.0.0/8, or `::1`."""
    if not host:
        return False
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure_url(url: str) -> bool:
    """Whether `url` is `https:`, or `http:` to a loopback host (this machine only)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback_host(parts.hostname)


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of an absolute URL, in lower case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def backend_url() -> str:
    """This backend's base URL, as Reflex knows it (follows the port it runs on)."""
    from reflex.config import get_config

    return get_config().api_url.rstrip("/")


def frontend_url() -> str:
    """Where the browser loads the app (the provider sends it back here)."""
    from reflex.config import get_config

    config = get_config()
    return (config.deploy_url or config.api_url).rstrip("/")
