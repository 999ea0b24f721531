"""The sign-in step (`/login`): the password form of a parked authorization request.

Failed sign-ins are throttled per user name and per client address (`throttle.py`),
checked before the password is looked at; no answer depends on whether a user name
exists. A refused form comes back with the name typed and the focus on the password.
A sign-in starts a new provider session with a new cookie (no fixation).
"""

from __future__ import annotations

import math
import secrets

from starlette.responses import Response

from pingapp.devidp import pages
from pingapp.devidp import records as r
from pingapp.devidp.adapter import HttpIn
from pingapp.devidp.interaction import SESSION_COOKIE, Interaction
from pingapp.devidp.records import digest


def sign_in(flow: Interaction, http: HttpIn) -> Response:
    """GET: the form. POST: check the password, start the session, go on to consent or
    back to the client."""
    provider = flow.provider
    values = dict(http.params)
    found = flow.transaction(http, values)
    if isinstance(found, Response):
        return found
    tx_id, transaction = found
    action = provider.url("/login")
    fields = flow.fields(http, tx_id)
    client_id = transaction.client_id
    home = flow.home(transaction)
    if http.method == "GET":
        return pages.sign_in_page(action, fields, provider.shown_passwords, client_id, home=home)

    username = values.get("username", "").strip()
    throttle = provider.throttle
    # Before the password is looked at, the same for known and unknown names.
    if wait := throttle.retry_after(username, http.client):
        minutes = max(1, math.ceil(wait / 60))
        plural = "minutes" if minutes > 1 else "minute"
        return pages.sign_in_page(
            action,
            fields,
            provider.shown_passwords,
            client_id,
            error=f"Too many failed sign-ins. Try again in {minutes} {plural}.",
            status=429,
            headers={"Retry-After": str(wait)},
            username=username,
            home=home,
        )
    if not provider.check_password(username, values.get("password", "")):
        throttle.failed(username, http.client)
        return pages.sign_in_page(
            action,
            fields,
            provider.shown_passwords,
            client_id,
            error="Wrong user name or password.",
            username=username,
            home=home,
        )
    throttle.succeeded(username)
    cookie, session = _new_session(flow, http, username)
    response = flow.after_sign_in(
        tx_id, transaction.signed_in(username, session.auth_time, session.sid)
    )
    flow.set_cookie(response, SESSION_COOKIE, cookie, provider.settings.session_ttl)
    return response


def _new_session(flow: Interaction, http: HttpIn, username: str) -> tuple[str, r.Session]:
    """A new session cookie at each sign-in; the old one ends. The session's public id
    (`sid`) lives on when the same user signs in again (prompt=login, max_age: step-up),
    as the provider session does; another user's sign-in ends the old session for its
    clients too."""
    provider = flow.provider
    sid = ""
    if old := http.cookies.get(SESSION_COOKIE):
        previous = flow.records.take(r.SESSIONS, digest(old))
        if previous is not None and previous.user == username:
            sid = previous.sid
        elif previous is not None:
            provider.end_session(previous.sid, previous.user)
    session = r.Session(username, int(provider.clock()), sid or secrets.token_urlsafe(24))
    cookie = secrets.token_urlsafe(32)
    ttl = provider.settings.session_ttl
    flow.records.put(r.SESSIONS, session, digest(cookie), ttl=ttl)
    return cookie, session
