"""The browser-facing authorization flow: `/authorize`, the sign-in and consent steps.

An authorization request is validated by authlib first. If it needs the user
(sign-in or consent), it is parked server-side as a *transaction*, tied to this
browser by a cookie and protected by a form token derived from that cookie, and the
browser is sent to the sign-in page (`signin.py`) or the consent page. When the
user is done, the parked request is replayed through authlib, which issues the code
(or `access_denied`), and the transaction is used up.

Both pages offer a way out that signs nothing in (`client_home`): a link to the
client's home, the origin of the request's redirect URI (the one authlib accepted, and
still registered) with the path `/`, as Keycloak's "Back to application" goes to the
client's base URL. The link leaves the transaction alone: it expires with
`TRANSACTION_TTL`, so the browser's Back button still finds a working page.

Only a request authlib accepted parks one: nothing else an anonymous request sends
(a bad request, an unknown `tx`, `request_uri` or cookie) is stored (docs/security.md
item 38). The store holds the transaction under the digest of its id and the digest
of the browser cookie; the browser holds the raw values.

Errors before the redirect URI is known to be registered give an error page and
never a redirect (docs/security.md item 28); later errors go back to the client as
RFC 6749 section 4.1.2.1 says, and every redirect back carries `iss` (RFC 9207).
"""

from __future__ import annotations

import secrets
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import OAuth2Error, scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from starlette.responses import RedirectResponse, Response

from pingapp.devidp import pages
from pingapp.devidp import records as r
from pingapp.devidp.adapter import (
    HttpIn,
    StarletteOAuth2Request,
    authorize_request,
    client_of,
    is_bad_input,
    payload_of,
)
from pingapp.devidp.grants import requested_audience
from pingapp.devidp.models import Client, Subject
from pingapp.devidp.provider import Provider
from pingapp.devidp.records import digest, form_token

SESSION_COOKIE = "idp_session"
BROWSER_COOKIE = "idp_browser"
#: How long a sign-in or consent page stays usable.
TRANSACTION_TTL = 600
#: The shortest browser-binding cookie taken as one (this provider sets 43 characters).
MIN_BROWSER_COOKIE = 32
CONSENT_TTL = 30 * 86_400


def client_home(client: Client | None, params: list[tuple[str, str]]) -> str | None:
    """Where "Back to <client>" leads: `scheme://host[:port]/` of the parked request's
    `redirect_uri` (its first value, the one authlib read), or None when there is no
    such client, the URI is not registered for it (any more), or is not http(s).

    Never a URL from the request as such: only the origin of a registered URI.
    """
    if client is None:
        return None
    redirect_uri = next((v for k, v in params if k == "redirect_uri"), "")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return None
    try:
        parts = urlsplit(redirect_uri)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}/"


class Interaction:
    """Authorize and consent, and what the sign-in and sign-out steps share:
    cookies, the provider session, transactions, answers to the client."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.records = provider.records
        self.server = provider.server
        issuer = urlsplit(provider.issuer)
        self.cookie_path = issuer.path or "/"
        self.secure_cookies = issuer.scheme == "https"

    # -- cookies and records ---------------------------------------------------

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.cookie_path,
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    @staticmethod
    def browser_cookie(http: HttpIn) -> str:
        """This browser's binding cookie, or "" when it has none (or a short one)."""
        current = http.cookies.get(BROWSER_COOKIE, "")
        return current if len(current) >= MIN_BROWSER_COOKIE else ""

    def browser(self, http: HttpIn) -> tuple[str, bool]:
        """This browser's binding id, and whether it is new (then set the cookie)."""
        if current := self.browser_cookie(http):
            return current, False
        return secrets.token_urlsafe(32), True

    def same_browser(self, http: HttpIn, browser: str) -> bool:
        """Whether this request comes from the browser whose cookie digest is `browser`."""
        current = self.browser_cookie(http)
        return bool(current) and secrets.compare_digest(digest(current), browser)

    def session(self, http: HttpIn) -> r.Session | None:
        cookie = http.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        session = self.records.get(r.SESSIONS, digest(cookie))
        if session is None or session.user not in self.provider.users:
            return None
        return session

    def home(self, transaction: r.Transaction) -> str | None:
        """The client's home for this transaction's "Back to" link (`client_home`)."""
        return client_home(self.provider.clients.get(transaction.client_id), transaction.params)

    def consented(self, username: str, client_id: str) -> set[str]:
        consent = self.records.get(r.CONSENTS, username, client_id)
        return set(consent.scopes) if consent else set()

    # -- the authorization endpoint --------------------------------------------

    def authorize(self, http: HttpIn) -> Response:
        pushed = self.provider.pushed.resolve(http)
        if isinstance(pushed, Response):
            return pushed
        http = pushed
        request = StarletteOAuth2Request(http)
        session = self.session(http)
        grant = None
        try:
            grant = self.server.get_consent_grant(
                request, end_user=session.user if session else None
            )
            payload = payload_of(request)
            audience = requested_audience(payload.datalist, self.provider.audiences)
            data = payload.data
            prompts = set((data.get("prompt") or "").split())
            needs_login = (
                session is None
                or bool(prompts & {"login", "select_account"})
                or self._too_old(session, data.get("max_age"), self.provider.clock())
            )
            if "none" in prompts and needs_login:
                raise LoginRequiredError()
            requested = scope_to_list(request.scope)
            client_id = client_of(request).client_id
            needs_consent = "consent" in prompts or (
                session is not None
                and not set(requested) <= self.consented(session.user, client_id)
            )
            if "none" in prompts and needs_consent:
                raise ConsentRequiredError()
        except ValueError as error:
            if not is_bad_input(error):
                raise
            return pages.error_page(
                "Sign-in request refused: invalid_request",
                "The request contains characters that are not allowed.",
            )
        except OAuth2Error as error:
            if grant is not None and error.redirect_uri is None:
                error.redirect_uri = grant.redirect_uri
            error.state = payload_of(request).state
            return self.authorize_error(error)

        if not needs_login and not needs_consent and session is not None:
            subject = self.subject(session.user, session.auth_time, audience, session.sid)
            return self.issue(http.params, subject, requested)

        bid, new_browser = self.browser(http)
        tx_id = secrets.token_urlsafe(24)
        transaction = r.Transaction(
            params=http.params,
            browser=digest(bid),
            client_id=client_id,
            scopes=requested,
            audience=audience,
            force_consent="consent" in prompts,
        )
        if not needs_login and session is not None:
            transaction = transaction.signed_in(session.user, session.auth_time, session.sid)
        self.records.put(r.TRANSACTIONS, transaction, digest(tx_id), ttl=TRANSACTION_TTL)
        step = "/login" if needs_login else "/consent"
        response = RedirectResponse(self.provider.url(f"{step}?tx={tx_id}"), status_code=303)
        if new_browser:
            self.set_cookie(response, BROWSER_COOKIE, bid, None)
        return response

    @staticmethod
    def _too_old(session: r.Session, max_age: str | None, now: float) -> bool:
        """OIDC Core section 3.1.2.1: `max_age=0` is `prompt=login`; otherwise a sign-in
        longer ago than `max_age` seconds is asked for again."""
        if max_age is None or not max_age.isdigit():
            return False
        return int(max_age) == 0 or now - session.auth_time > int(max_age)

    def _with_iss(self, response: Response) -> Response:
        """RFC 9207: `iss` in every authorization response sent back to the client."""
        location = response.headers.get("location")
        if response.status_code in (302, 303) and location:
            parts = urlsplit(location)
            query = [
                (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"
            ]
            query.append(("iss", self.provider.issuer))
            response.headers["location"] = urlunsplit(parts._replace(query=urlencode(query)))
        return response

    def authorize_error(self, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            response = self.server.handle_error_response(cast(Any, None), error)
            return self._with_iss(cast(Response, response))
        detail = error.description or error.error or "invalid request"
        return pages.error_page(f"Sign-in request refused: {error.error}", str(detail))

    @staticmethod
    def subject(username: str, auth_time: int, audience: str | None, sid: str) -> Subject:
        return Subject(username, int(auth_time), secrets.token_urlsafe(16), audience, sid=sid)

    def issue(
        self, params: list[tuple[str, str]], subject: Subject | None, granted: list[str]
    ) -> Response:
        """Replay the validated request through authlib: a code, or `access_denied`."""
        request = StarletteOAuth2Request(authorize_request(self.provider.url, params))
        try:
            grant = self.server.get_authorization_grant(request)
        except OAuth2Error as error:  # the request was valid minutes ago; config changed?
            return self.authorize_error(error)
        request.granted_scope = " ".join(granted)  # type: ignore[attr-defined]
        response = self.server.create_authorization_response(
            request, grant_user=subject, grant=grant
        )
        return self._with_iss(cast(Response, response))

    # -- transactions (sign-in and consent pages) ---------------------------------

    def transaction(
        self, http: HttpIn, values: dict[str, str]
    ) -> tuple[str, r.Transaction] | Response:
        """The parked request, if this browser started it and (POST) the form token matches."""
        tx_id = values.get("tx", "")
        transaction = self.records.get(r.TRANSACTIONS, digest(tx_id)) if tx_id else None
        if transaction is None:
            return pages.error_page(
                "This sign-in has expired", "The sign-in page was open too long.", 400
            )
        token_ok = http.method == "GET" or secrets.compare_digest(
            values.get("csrf", "").encode(), self.fields(http, tx_id)["csrf"].encode()
        )
        if not (self.same_browser(http, transaction.browser) and token_ok):
            return pages.error_page(
                "Sign-in form refused",
                "This form was not opened in this browser, or was already used.",
                403,
            )
        return tx_id, transaction

    def fields(self, http: HttpIn, tx_id: str) -> dict[str, str]:
        """The hidden fields of a transaction's forms: its id and this browser's token."""
        return {"tx": tx_id, "csrf": form_token(self.browser_cookie(http), "tx", tx_id)}

    def after_sign_in(self, tx_id: str, transaction: r.Transaction) -> Response:
        """To the consent page if it is needed, else back to the client with a code."""
        consented = self.consented(cast(str, transaction.user), transaction.client_id)
        if transaction.force_consent or not set(transaction.scopes) <= consented:
            self.records.put(r.TRANSACTIONS, transaction, digest(tx_id), ttl=TRANSACTION_TTL)
            return RedirectResponse(self.provider.url(f"/consent?tx={tx_id}"), status_code=303)
        return self.finish(tx_id, transaction, transaction.scopes)

    def consent(self, http: HttpIn) -> Response:
        values = dict(http.params)
        found = self.transaction(http, values)
        if isinstance(found, Response):
            return found
        tx_id, transaction = found
        if not transaction.user:
            return pages.error_page("Not signed in", "Sign in before giving consent.", 400)
        if http.method == "GET":
            return pages.consent_page(
                self.provider.url("/consent"),
                self.fields(http, tx_id),
                transaction.scopes,
                transaction.client_id,
                transaction.user,
                home=self.home(transaction),
            )
        if values.get("decision") != "allow":
            return self.finish(tx_id, transaction, None)
        ticked = {value for name, value in http.form if name == "scope"}
        granted = [s for s in transaction.scopes if s in ticked or s == "openid"]
        consent = r.Consent(granted)
        key = (transaction.user, transaction.client_id)
        self.records.put(r.CONSENTS, consent, *key, ttl=CONSENT_TTL)
        return self.finish(tx_id, transaction, granted)

    def finish(self, tx_id: str, transaction: r.Transaction, granted: list[str] | None) -> Response:
        # one use, even if two tabs race
        if self.records.take(r.TRANSACTIONS, digest(tx_id)) is None:
            return pages.error_page("This sign-in was already completed", "Start again.", 400)
        subject = None
        if granted is not None:
            user, auth_time = cast(str, transaction.user), cast(int, transaction.auth_time)
            subject = self.subject(user, auth_time, transaction.audience, transaction.sid or "")
        return self.issue(transaction.params, subject, granted or [])
