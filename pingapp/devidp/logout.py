"""Sign-out (`/logout`, RP-Initiated Logout 1.0): ends this browser's provider session.

Without a prompt only when an `id_token_hint` this provider signed names the user
signed in here (and a `logout_hint`, if also sent, names the same user); anything
else, `client_id` + `logout_hint` alone included (any page can write those), gets a
confirmation form bound to this browser, so a link or form elsewhere cannot sign
users out (docs/security.md item 35). The form's token is derived from the browser's
cookie and the time (`form_token`), so asking stores nothing (docs/security.md item 38).
The browser goes back only to a post-logout URI registered for the client, which is
named by `client_id` or by the ID token's audience. Ending the session sends Logout
Tokens to its clients (`backchannel.py`).
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
from pingapp.devidp.records import digest, form_token


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
        token = _confirmation_tokens(flow, bid)[0]
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
    """Whether the request proves it comes from a client of the user signed in here.

    Only an `id_token_hint` does (authlib checked its signature, issuer and client):
    its `sub` must be the session's user, and a `logout_hint` sent with it must name
    the same user. A `logout_hint` alone names a user but proves nothing (anyone can
    put `client_id=pingapp&logout_hint=alice` in a link): False, as are no session
    and no hint.
    """
    if session is None or end.id_token_claims is None:
        return False
    if end.id_token_claims.get("sub") != session.user:
        return False
    return end.logout_hint is None or end.logout_hint == session.user


def _confirmation_tokens(flow: Interaction, bid: str) -> tuple[str, str]:
    """The confirmation form's token for this browser now, and the one of the window
    before: a form shown stays usable for one to two TRANSACTION_TTLs."""
    window = int(flow.provider.clock() // TRANSACTION_TTL)
    return (
        form_token(bid, "logout", str(window)),
        form_token(bid, "logout", str(window - 1)),
    )


def _confirmed(flow: Interaction, http: HttpIn, values: dict[str, str]) -> bool:
    """A POST of the confirmation form shown to this browser, lately."""
    sent = values.get("csrf", "")
    bid = flow.browser_cookie(http)
    if http.method != "POST" or not sent or not bid:
        return False
    tokens = _confirmation_tokens(flow, bid)
    return any(secrets.compare_digest(sent.encode(), token.encode()) for token in tokens)
