"""`/auth/session`: the one HTTP hop that gives the browser its session cookie.

A websocket cannot set an HttpOnly cookie, so the callback hands the browser a
one-time ticket (60 s) and sends it here; this route swaps the ticket for the
cookie and redirects to the page the user came from.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pingapp.auth.oidc import safe_return_path
from pingapp.auth.session import COOKIE_NAME, redeem_ticket
from pingapp.settings import frontend_url

logger = logging.getLogger(__name__)

#: The cookie outlives no session: the server decides, this is only an upper bound.
COOKIE_MAX_AGE = 7 * 24 * 3600


def _page(title: str, text: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><title>{title}</title><p>{text} "
        f'<a href="{frontend_url()}/">Back to pingapp</a></p>',
        status_code=status,
        headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
    )


async def bind_session(request: Request) -> Response:
    ticket = request.query_params.get("ticket", "")
    try:
        record = await redeem_ticket(ticket) if 20 <= len(ticket) <= 100 else None
    except (RedisError, OSError):
        # The session store (Redis) is unreachable: the ticket is still unspent.
        logger.warning("session store unavailable while binding a session")
        response = _page(
            "Try again in a moment",
            "The session store is not reachable right now; reload this page in a moment.",
            503,
        )
        response.headers["Retry-After"] = "5"
        return response
    if record is None:
        return _page(
            "Sign-in link expired",
            "This sign-in link has expired or was already used: press Log In again.",
            400,
        )
    target = frontend_url() + safe_return_path(record.return_to)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        record.session_id,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=target.startswith("https://"),
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def create_auth_routes() -> Starlette:
    """Mounted at `/auth` by the app."""
    return Starlette(routes=[Route("/session", bind_session, methods=["GET"])])
