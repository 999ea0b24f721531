"""Sign-out (`/logout`, RP-Initiated Logout 1.0): ends this browser's provider session.

Without a prompt only when the request names the signed-in user; anything else gets
a confirmation form bound to this browser, so a link or form elsewhere cannot sign
users out (SECURITY.md item 35). The browser goes back only to a post-logout URI
registered for the client, which is named by `client_id` or by the ID token's
audience. Ending the session sends Logout Tokens to its clients (`backchannel.py`).
"""

from __future__ import annotations

import secrets
from typing import Any, cast

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oidc.rpinitiated import EndSessionRequest
from starlette.responses import Response

from pingapp.devidp import pages
from pingapp.devidp import records as r
from pingapp.devidp.adapter import HttpIn
from pingapp.devidp.interaction import BROWSER_COOKIE, SESSION_COOKIE, TRANSACTION_TTL, Interaction
from pingapp.devidp.records import digest


def sign_out(flow: Interaction, http: HttpIn) -> Response:
    """End the session and go back to the client (or show that it ended), or ask first."""
    try:
        # (typeshed's authlib stubs predate validate_endpoint_request)
        end = cast(Any, flow.server).validate_endpoint_request("end_session", http)
    except OAuth2Error as error:
        detail = error.description or error.error or "invalid request"
        return pages.error_page("Sign-out request refused", str(detail))
    values = dict(http.params)
    if values.get("client_id") and end.client is None:
        return pages.error_page("Sign-out request refused", "Unknown client.")
    session = flow.session(http)
    if not names_session_user(end, session) and not _confirmed(flow, http, values):
        bid, new_browser = flow.browser(http)
        token = secrets.token_urlsafe(24)
        confirmation = r.LogoutConfirmation(bid)
        flow.records.put(r.LOGOUT_CONFIRMATIONS, confirmation, token, ttl=TRANSACTION_TTL)
        fields = {k: v for k, v in values.items() if k != "csrf"} | {"csrf": token}
        response: Response = pages.logout_confirm_page(flow.provider.url("/logout"), fields)
        if new_browser:
            flow.set_cookie(response, BROWSER_COOKIE, bid, None)
        return response
    if cookie := http.cookies.get(SESSION_COOKIE):
        ended = flow.records.take(r.SESSIONS, digest(cookie))
        if ended is not None:  # Back-Channel Logout: every client of this session
            flow.provider.end_session(ended.sid, ended.user)
    response = flow.server.create_endpoint_response("end_session", end) or pages.signed_out_page()
    response.delete_cookie(SESSION_COOKIE, path=flow.cookie_path)
    return response


def names_session_user(end: EndSessionRequest, session: r.Session | None) -> bool:
    """Whether the request names the user signed in here, by every hint it gives.

    Hints: `id_token_hint` (its `sub`), and `logout_hint` (a `sub`), which counts
    only with a known client (`client_id`, or the ID token's audience). No
    session, no hint, or one hint naming someone else: False.
    """
    if session is None:
        return False
    named: list[object] = []
    if end.id_token_claims is not None:
        named.append(end.id_token_claims.get("sub"))
    if end.logout_hint is not None:
        if end.client is None:
            return False
        named.append(end.logout_hint)
    return bool(named) and all(sub == session.user for sub in named)


def _confirmed(flow: Interaction, http: HttpIn, values: dict[str, str]) -> bool:
    """A POST of the confirmation form shown to this browser (once)."""
    if http.method != "POST" or not values.get("csrf"):
        return False
    confirmation = flow.records.take(r.LOGOUT_CONFIRMATIONS, values["csrf"])
    return confirmation is not None and flow.same_browser(http, confirmation.bid)
