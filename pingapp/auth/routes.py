"""`/auth/login` and `/auth/session`: the two HTTP hops of a sign-in.

A websocket cannot set a cookie, so the two steps that need one are plain routes:

1. `GET /auth/login?tx=…` (from Log In): spends the one-time handle the Reflex
   handler made, sets a short-lived HttpOnly **login cookie** and sends the browser
   to the provider. The pending login remembers a hash of that cookie, so only this
   browser can finish it (SECURITY.md 31: no login CSRF).
2. `GET /auth/session?ticket=…` (after the callback): spends the one-time ticket,
   checks the same login cookie, and swaps it for the **session cookie**.

A third, `POST /auth/backchannel-logout`, is called by the provider, not the
browser (OpenID Connect Back-Channel Logout 1.0): a valid Logout Token ends every
session it names and signs out their open tabs (SECURITY.md 41).

No route grants CORS to anyone, and none creates a record for an unknown handle
(SECURITY.md 30, 38).
"""

from __future__ import annotations

import asyncio
import html
import logging

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pingapp.auth.cookies import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    cookie_name,
    digest,
    new_secret,
    read_cookie,
    same_digest,
)
from pingapp.auth.errors import LoginError, LogoutTokenRefused
from pingapp.auth.id_token import LOGOUT_TOKEN_MAX_AGE
from pingapp.auth.login import safe_return_path
from pingapp.auth.session import LOGIN_TTL
from pingapp.context import context

logger = logging.getLogger(__name__)

NO_STORE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _page(title: str, text: str, status: int) -> HTMLResponse:
    home = html.escape(context().frontend_url + "/", quote=True)
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
    ctx = context()
    try:
        record = await ctx.vault.take_login(handle)
        if record is None:
            return _page(
                "Sign-in link expired",
                "This sign-in link has expired or was already used: press Log In again.",
                400,
            )
        binding = new_secret()
        record.browser = digest(binding)
        await ctx.vault.put_login(record.login.state, record)
    except (RedisError, OSError):
        return _store_down()
    response = _redirect(record.authorize_url)
    response.set_cookie(
        cookie_name(LOGIN_COOKIE, secure=ctx.secure),
        binding,
        max_age=int(LOGIN_TTL),
        path="/",
        httponly=True,
        samesite="lax",
        secure=ctx.secure,
    )
    return response


async def bind_session(request: Request) -> Response:
    ticket = request.query_params.get("ticket", "")
    ctx = context()
    secure = ctx.secure
    try:
        record = await ctx.vault.redeem_ticket(ticket)
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
    response = _redirect(ctx.frontend_url + safe_return_path(record.return_to))
    response.set_cookie(
        cookie_name(SESSION_COOKIE, secure=secure),
        record.session_id,
        max_age=ctx.settings.session_max_age,
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


def _logout_refused(description: str) -> JSONResponse:
    logger.info("back-channel logout refused: %s", description)
    return JSONResponse(
        {"error": "invalid_request", "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


async def backchannel_logout(request: Request) -> Response:
    """End the sessions a provider's Logout Token names (BCL 1.0 section 2.8):
    200 when done (also when no session matched), 400 with `error` otherwise."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _logout_refused("send the logout_token as a form (x-www-form-urlencoded)")
    try:
        form = await request.form()
    except Exception:  # a malformed body: the client's fault, never a 500
        return _logout_refused("the request body is not a form")
    token = form.get("logout_token")
    if not isinstance(token, str) or not token or len(token) > 16_384:
        return _logout_refused("logout_token is missing")
    ctx = context()
    try:
        claims = await ctx.oidc.validate_logout_token(token)
        issuer = str(claims["iss"])
        if not await ctx.vault.first_use(issuer, claims["jti"], LOGOUT_TOKEN_MAX_AGE * 2):
            return _logout_refused("this logout token was already used")
        named = await ctx.vault.sessions_of(issuer, sid=claims.get("sid"), sub=claims.get("sub"))
        ended = [session for h in named if (session := await ctx.vault.end(h)) is not None]
    except LogoutTokenRefused as refused:
        return _logout_refused(str(refused))
    except LoginError as error:  # the provider's metadata cannot be had
        return _logout_refused(f"the logout token cannot be checked now: {error.title}")
    except (RedisError, OSError):
        return _logout_refused("the session store is not reachable; try again")
    logger.info("back-channel logout ended %d session(s)", len(ended))
    for session in ended:
        await ctx.sign_out_tabs(session.tabs, "")
        if session.refresh_token:
            # The provider may be the caller, waiting for this answer: revoke later.
            task = asyncio.create_task(ctx.oidc.revoke(session.refresh_token))
            _background.add(task)
            task.add_done_callback(_background.discard)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


#: Revocations still running (kept referenced until they finish).
_background: set[asyncio.Task[bool]] = set()


def create_auth_routes() -> Starlette:
    """Mounted at `/auth` by the app."""
    return Starlette(
        routes=[
            Route("/login", start_login, methods=["GET"]),
            Route("/session", bind_session, methods=["GET"]),
            Route("/backchannel-logout", backchannel_logout, methods=["POST"]),
        ]
    )
