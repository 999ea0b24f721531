"""`/auth/login` and `/auth/session`: the two HTTP hops of a sign-in.

A websocket cannot set a cookie, so the two steps that need one are plain routes:

1. `GET /auth/login?return_to=…` (Log In is a link here): makes the pending login
   (state, nonce, PKCE, the DPoP key, PAR at the provider), sets a short-lived
   HttpOnly **login cookie** and sends the browser to the provider. The pending
   login remembers a keyed digest of that cookie, so only this browser can finish
   it (docs/security.md 31: no login CSRF). Nothing is stored or sent to the provider
   before a browser gets here, and each client address may start only
   LOGIN_RATE_LIMIT sign-ins a minute (docs/security.md 47).
2. `GET /auth/session?ticket=…` (after the callback): spends the one-time ticket,
   checks the same login cookie, and swaps it for the **session cookie**. This is
   the browser's own request, so the session records here what the sessions list
   shows of it: its User-Agent and its coarse client address (docs/sessions.md).

A third, `POST /auth/backchannel-logout`, is called by the provider, not the
browser (OpenID Connect Back-Channel Logout 1.0): a valid Logout Token ends every
session it names and signs out their open tabs (docs/security.md 41).

No route grants CORS to anyone, and none creates a record for an unknown handle
(docs/security.md 30, 38).
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from pingapp import telemetry
from pingapp.auth.devices import clean_agent, coarse_address
from pingapp.context import context
from pingapp.oidc.cookies import LOGIN_COOKIE, SESSION_COOKIE, cookie_name, new_secret, read_cookie
from pingapp.oidc.errors import LoginError, LogoutTokenRefused
from pingapp.oidc.id_token import LOGOUT_TOKEN_MAX_AGE
from pingapp.oidc.login import new_pending_login, safe_return_path
from pingapp.oidc.session import LOGIN_TTL, BindTicket, LoginRecord
from pingapp.routes import AUTH, BACKCHANNEL_LOGOUT, CALLBACK, HOME, LOGIN, SESSION_HOP
from pingapp.web.bodylimit import BodySizeLimit
from pingapp.web.clientaddr import client_address

logger = logging.getLogger(__name__)

NO_STORE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


#: Sign-ins started per client address in the last minute (LOGIN_RATE_LIMIT).
_login_starts = MovingWindowRateLimiter(MemoryStorage())


def _page(title: str, text: str, status: int, retry: str = "") -> HTMLResponse:
    home = html.escape(context().frontend_url + "/", quote=True)
    again = f'<a id="try-again" href="{html.escape(retry, quote=True)}">Try again</a> · '
    title, text = html.escape(title), html.escape(text)
    return HTMLResponse(
        f'<!doctype html><html lang="en"><title>{title}</title><main>'
        f'<h1 id="auth-error-title">{title}</h1><p id="auth-error-detail">{text}</p>'
        f'<p>{again if retry else ""}<a id="back-home" href="{home}">Back to pingapp</a></p>'
        "</main></html>",
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
    ctx = context()
    address = client_address(request.scope, ctx.settings.trusted_proxies)
    rate = RateLimitItemPerMinute(ctx.settings.login_rate_limit)
    if not _login_starts.hit(rate, address):
        reset, _ = _login_starts.get_window_stats(rate, address)
        response = _page(
            "Too many sign-ins",
            "This address started too many sign-ins in a short time. Wait a minute, "
            "then press Log In again.",
            429,
        )
        response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
        telemetry.sign_in_failed("rate_limited", address=address)
        return response
    query = request.query_params
    return_to = query.get("return_to", "")  # made a safe local path by new_pending_login
    pending = new_pending_login(
        redirect_uri=ctx.frontend_url + CALLBACK,
        # The callback is never a place to come back to.
        return_to=HOME if return_to == CALLBACK else return_to,
        # Step-up (RFC 9470): a sign-in at most this old; the callback checks it.
        max_age=ctx.settings.api_recent_auth_max_age if query.get("step_up") == "1" else None,
    )
    try:
        # A new DPoP key for every sign-in (AUTH_DPOP), kept with the pending login.
        key = await ctx.oidc.new_dpop_key()
        url = await ctx.oidc.authorization_url(
            pending, prompt="consent" if query.get("prompt") == "consent" else None
        )
    except LoginError as error:
        logger.warning("a sign-in could not start: %s", error.title)
        telemetry.sign_in_failed(error.code or "provider_unavailable", address=address)
        response = _page(error.title, error.detail, 503, retry=str(request.url))
        response.headers["Retry-After"] = "5"
        return response
    binding = new_secret()
    record = LoginRecord(
        login=pending,
        browser=ctx.vault.reference(binding),
        dpop_key=key,
        # This request's span (`GET /auth/login`) roots the sign-in's trace.
        trace=telemetry.carrier(),
    )
    try:
        await ctx.vault.put_login(pending.state, record)
    except (RedisError, OSError):
        return _store_down()
    response = _redirect(url)
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
    with telemetry.continued(record.trace, "pingapp.sign_in.session"):
        return await _bind(request, record)


async def _bind(request: Request, record: BindTicket) -> Response:
    ctx = context()
    secure = ctx.secure
    binding = read_cookie(request.scope["headers"], LOGIN_COOKIE, secure=secure)
    if not ctx.vault.matches(binding, record.browser):
        # Someone else's sign-in link: it would sign this browser in as them.
        logger.warning("a session ticket was presented by another browser; refused")
        telemetry.audit(
            "sign_in",
            outcome="failure",
            address=client_address(request.scope, ctx.settings.trusted_proxies),
            reason="other_browser",
        )
        return _page(
            "This sign-in belongs to another browser",
            "The link was not made for this browser, so it cannot sign you in. "
            "Press Log In to sign in yourself.",
            400,
        )
    await _note_browser(request, ctx.vault.reference(record.session_id))
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


async def _note_browser(request: Request, session_hash: str) -> None:
    """Record in the new session the browser that takes its cookie: its User-Agent
    and its network (IPv4 /24, IPv6 /48; TRUSTED_PROXIES honoured), never the full
    address. A store failure here costs the sessions list a detail, not the sign-in."""
    ctx = context()
    address = coarse_address(client_address(request.scope, ctx.settings.trusted_proxies))
    try:
        async with ctx.vault.modify(session_hash) as session:
            if session is not None:
                session.user_agent = clean_agent(request.headers.get("user-agent", ""))
                session.address = address
    except (RedisError, OSError):
        logger.warning("could not record the browser of a new session")


def _logout_refused(description: str) -> JSONResponse:
    logger.info("back-channel logout refused: %s", description)
    return JSONResponse(
        {"error": "invalid_request", "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


def _logout_later(reason: str) -> JSONResponse:
    """Our side failed (the store, or the provider's keys cannot be had): nothing was
    ended and nothing recorded, so the provider may send the same token again."""
    logger.warning("back-channel logout postponed: %s", reason)
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": reason},
        status_code=503,
        headers={"Cache-Control": "no-store", "Retry-After": "5"},
    )


async def backchannel_logout(request: Request) -> Response:
    """End the sessions a provider's Logout Token names (BCL 1.0 section 2.8):
    200 when done (also when no session matched), 400 with `error` for a bad
    token, 503 with `Retry-After` when the store or the provider's metadata fails
    (docs/security.md 48). The token's `jti` is recorded only once its sessions ended."""
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
        issuer, jti = str(claims["iss"]), str(claims["jti"])
        if await ctx.vault.seen(issuer, jti):
            return _logout_refused("this logout token was already used")
        named = await ctx.vault.sessions_of(issuer, sid=claims.get("sid"), sub=claims.get("sub"))
        ended = [(h, session) for h in named if (session := await ctx.vault.end(h)) is not None]
        # Two deliveries at once both end the same sessions; the second is told so.
        if not await ctx.vault.first_use(issuer, jti, LOGOUT_TOKEN_MAX_AGE * 2) and not ended:
            return _logout_refused("this logout token was already used")
    except LogoutTokenRefused as refused:
        return _logout_refused(str(refused))
    except LoginError as error:  # the provider's metadata cannot be had
        return _logout_later(f"the logout token cannot be checked now: {error.title}")
    except (RedisError, OSError):
        return _logout_later("the session store is not reachable")
    logger.info("back-channel logout ended %d session(s)", len(ended))
    for session_hash, session in ended:
        telemetry.session_closed(
            "backchannel_logout",
            user=str(session.claims.get("sub", "")),
            session=session_hash,
            address=client_address(request.scope, ctx.settings.trusted_proxies),
        )
        await ctx.sign_out_tabs(session.tabs, "")
        if session.refresh_token:
            # The provider may be the caller, waiting for this answer: revoke later.
            task = asyncio.create_task(ctx.oidc.revoke(session.refresh_token))
            _background.add(task)
            task.add_done_callback(_background.discard)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


#: Revocations still running (kept referenced until they finish).
_background: set[asyncio.Task[bool]] = set()


def create_auth_routes() -> ASGIApp:
    """Mounted at `/auth` by the app."""
    routes = Starlette(
        routes=[
            Route(LOGIN.removeprefix(AUTH), start_login, methods=["GET"]),
            Route(SESSION_HOP.removeprefix(AUTH), bind_session, methods=["GET"]),
            Route(BACKCHANNEL_LOGOUT.removeprefix(AUTH), backchannel_logout, methods=["POST"]),
        ]
    )
    # The Logout Token's form is read only after its size is known (docs/security.md 50).
    return BodySizeLimit(routes)
