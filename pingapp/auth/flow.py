"""The steps of signing in and out that talk to the provider, as plain code.

`finish_login` turns the provider's answer on the callback into a stored
session; `end_at_provider` revokes a session's refresh token and says where the
browser goes to end the provider's session. `AuthState` calls them and shows
their result.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from pingapp.context import AppContext
from pingapp.oidc.dpop import bound_jkt
from pingapp.oidc.errors import LoginError, describe_provider_error
from pingapp.oidc.session import LOGIN_TTL, LoginRecord, ServerSession


async def finish_login(
    ctx: AppContext,
    record: LoginRecord | None,
    params: dict[str, Any],
    *,
    browser: str,
    replaces: str,
) -> tuple[str, ServerSession]:
    """Check the callback, trade the code, store the session; return its id (for
    the cookie) and the session. `browser` is the reference of the connection's
    login cookie, `replaces` of its session cookie (that session ends). The tabs
    that show the session join it when they load (`AuthState.restore`)."""
    # `state` first (docs/security.md 14, 31, 36): an answer that belongs to no login
    # this browser started gets a generic message, whatever else it carries.
    if record is None or not browser or not hmac.compare_digest(browser, record.browser):
        raise LoginError(
            "This sign-in cannot be finished here",
            "The answer from the provider does not belong to a login started in this "
            "browser, or was already used. Press Log In to start again.",
            code="bad_state",
        )
    pending = record.login
    await ctx.oidc.check_response_issuer(params.get("iss"))
    if params.get("error"):
        raise describe_provider_error(
            str(params["error"]), str(params.get("error_description", ""))
        )
    if time.time() - pending.started_at > LOGIN_TTL:
        raise LoginError(
            "The sign-in took too long", "Press Log In to start again.", code="expired"
        )
    code = params.get("code")
    if not isinstance(code, str) or not code:
        raise LoginError("The provider sent no code", "Press Log In to try again.", code="no_code")
    tokens = await ctx.oidc.exchange_code(pending, code, dpop_key=record.dpop_key)
    # Bound when the provider says so (token_type DPoP); else used as a bearer token.
    jkt = bound_jkt(tokens, record.dpop_key)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise LoginError(
            "The provider sent no ID token",
            "AUTH_SCOPE must include 'openid'. Check the provider's application settings.",
            code="no_id_token",
        )
    claims = await ctx.oidc.validate_id_token(
        id_token, nonce=pending.nonce, max_age=pending.max_age
    )
    profile = await ctx.oidc.userinfo(
        tokens["access_token"], dpop_key=record.dpop_key if jkt else ""
    )
    if profile.get("sub") not in (None, claims["sub"]):
        profile = {}  # OIDC Core 5.3.2: a userinfo for someone else is ignored
    # A new id at every sign-in (docs/security.md 20): the old session ends here.
    await ctx.vault.end(replaces)
    session = ServerSession(
        access_token=tokens["access_token"],
        refresh_token=str(tokens.get("refresh_token", "")),
        id_token=id_token,
        expires_at=time.time() + float(tokens.get("expires_in", 0) or 0),
        scope=str(tokens.get("scope") or ctx.settings.auth_scope),
        claims=claims,
        profile=profile,
        dpop_key=record.dpop_key,
        dpop_jkt=jkt,
    )
    return await ctx.vault.create(session), session


async def end_at_provider(ctx: AppContext, ended: ServerSession | None) -> tuple[str | None, bool]:
    """Revoke the ended session's refresh token (RFC 7009) and return the provider's
    logout URL (or None) and whether the provider answers there. `LoginError` when
    the provider's metadata cannot be had.

    No ID token goes in a URL the browser sees (docs/security.md 19, 24): the provider
    learns who is leaving from `client_id` and `logout_hint`."""
    if ended and ended.refresh_token:
        await ctx.oidc.revoke(ended.refresh_token)
    url = await ctx.oidc.logout_url(
        logout_hint=str(ended.claims["sub"]) if ended and "sub" in ended.claims else None,
        return_to=ctx.frontend_url + "/",
    )
    return url, url is None or await ctx.oidc.reachable(url)
