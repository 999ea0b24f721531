"""`/auth/login` and `/auth/session`: the two HTTP hops of a sign-in.

A websocket cannot set a cookie, so the two steps that need one are plain routes:

1. `GET /auth/login?tx=…` (from Log In): spends the one-time handle the Reflex
   handler made, sets a short-lived HttpOnly **login cookie** and sends the browser
   to the provider. The pending login remembers a hash of that cookie, so only this
   browser can finish it (SECURITY.md 31: no login CSRF).
2. `GET /auth/session?ticket=…` (after the callback): spends the one-time ticket,
   checks the same login cookie, and swaps it for the **session cookie**.

Neither route grants CORS to anyone, and neither creates a record for an unknown
handle (SECURITY.md 30, 38).
"""

from __future__ import annotations

import html
import logging

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pingapp.auth.oidc import safe_return_path
from pingapp.auth.session import (
    LOGIN_COOKIE,
    LOGIN_TTL,
    SESSION_COOKIE,
    cookie_name,
    digest,
    new_secret,
    read_cookie,
    same_digest,
    vault,
)
from pingapp.settings import frontend_url, get_settings

logger = logging.getLogger(__name__)

NO_STORE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _secure() -> bool:
    return frontend_url().startswith("https://")


def _page(title: str, text: str, status: int) -> HTMLResponse:
    home = html.escape(frontend_url() + "/", quote=True)
    return HTMLResponse(
        f'<!doctype html><html lang="en"><title>{title}</title><main><h1>{title}</h1>'
        f'<p>{text} <a href="{home}">Back to pingapp</a></p></main></html>',
        status_code=status,
        headers=NO_STORE,
    )


def _store_down() -> HTMLResponse:
    logger.warning("session store unavailable during a sign-in step")
    response = _page(
        "Try again in a moment",
        "The session store is not reachable right now; reload this page in a moment.",
        503,
    )
    response.headers["Retry-After"] = "5"
    return response


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303, headers=NO_STORE)


async def start_login(request: Request) -> Response:
    handle = request.query_params.get("tx", "")
    try:
        record = await vault().take_login(handle)
        if record is None:
            return _page(
                "Sign-in link expired",
                "This sign-in link has expired or was already used: press Log In again.",
                400,
            )
        binding = new_secret()
        record.browser = digest(binding)
        await vault().put_login(record.login.state, record)
    except (RedisError, OSError):
        return _store_down()
    response = _redirect(record.authorize_url)
    response.set_cookie(
        cookie_name(LOGIN_COOKIE, secure=_secure()),
        binding,
        max_age=int(LOGIN_TTL),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(),
    )
    return response


async def bind_session(request: Request) -> Response:
    ticket = request.query_params.get("ticket", "")
    secure = _secure()
    try:
        record = await vault().redeem_ticket(ticket)
    except (RedisError, OSError):
        return _store_down()  # the ticket is still unspent
    if record is None:
        return _page(
            "Sign-in link expired",
            "This sign-in link has expired or was already used: press Log In again.",
            400,
        )
    login_cookie = request.headers.get("cookie", "")
    if not same_digest(read_cookie(login_cookie, LOGIN_COOKIE, secure=secure), record.browser):
        # Someone else's sign-in link: it would sign this browser in as them.
        logger.warning("a session ticket was presented by another browser; refused")
        return _page(
            "This sign-in belongs to another browser",
            "The link was not made for this browser, so it cannot sign you in. "
            "Press Log In to sign in yourself.",
            400,
        )
    response = _redirect(frontend_url() + safe_return_path(record.return_to))
    response.set_cookie(
        cookie_name(SESSION_COOKIE, secure=secure),
        record.session_id,
        max_age=get_settings().session_max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    response.delete_cookie(
        cookie_name(LOGIN_COOKIE, secure=secure),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    return response


def create_auth_routes() -> Starlette:
    """Mounted at `/auth` by the app."""
    return Starlette(
        routes=[
            Route("/login", start_login, methods=["GET"]),
            Route("/session", bind_session, methods=["GET"]),
        ]
    )
