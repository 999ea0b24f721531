"""HTTP routes of the embedded provider, and the sign-in / consent interaction.

An authorization request is validated by authlib first. If it needs the user
(sign-in or consent), it is parked server-side as a *transaction*, tied to this
browser by a cookie and protected by a one-time form token, and the browser is
sent to the sign-in or consent page. When the user is done, the parked request
is replayed through authlib, which issues the code (or `access_denied`).

Errors before the redirect URI is known to be registered give an error page and
never a redirect (SECURITY.md item 28); later errors go back to the client as
RFC 6749 section 4.1.2.1 says.

A request may be pushed first (`/par`, RFC 9126) and then named by its
`request_uri`; every redirect back to the client carries `iss` (RFC 9207). Ending
a provider session sends Logout Tokens to its clients (`backchannel.py`).

Failed sign-ins are throttled per user name and per client address (`throttle.py`);
no answer depends on whether a user name exists. Sign-out asks first unless the
request names the signed-in user (SECURITY.md items 33 and 35).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error, scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from authlib.oidc.rpinitiated import EndSessionRequest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pingapp.devidp import pages
from pingapp.devidp.backchannel import LogoutDelivery
from pingapp.devidp.config import (
    DOCS_CLIENT_ID,
    DOCS_REDIRECT_PATH,
    IdpSettings,
    frontend_origins,
    get_idp_settings,
)
from pingapp.devidp.keys import SigningKeys, load_signing_keys
from pingapp.devidp.models import Client, Subject
from pingapp.devidp.server import (
    CLIENT_AUTH_METHODS,
    PAR_TTL,
    HttpIn,
    InvalidRequestUriError,
    InvalidTargetError,
    Provider,
    StarletteOAuth2Request,
    client_of,
    digest,
    is_bad_input,
    payload_of,
)
from pingapp.devidp.storage import Record, Store, store_for

log = logging.getLogger("pingapp.devidp")

SESSION_COOKIE = "idp_session"
BROWSER_COOKIE = "idp_browser"
#: How long a sign-in or consent page stays usable.
TRANSACTION_TTL = 600
CONSENT_TTL = 30 * 86_400


class Interaction:
    """The browser-facing part of the provider: authorize, sign in, consent, sign out."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.store = provider.store
        self.server = provider.server
        issuer = urlsplit(provider.issuer)
        self.cookie_path = issuer.path or "/"
        self.secure_cookies = issuer.scheme == "https"

    # -- cookies and records ---------------------------------------------------

    def _set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.cookie_path,
            secure=self.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    def _browser(self, http: HttpIn) -> tuple[str, bool]:
        """This browser's binding id, and whether it is new (then set the cookie)."""
        current = http.cookies.get(BROWSER_COOKIE, "")
        if len(current) >= 32:
            return current, False
        return secrets.token_urlsafe(32), True

    def session(self, http: HttpIn) -> Record | None:
        sid = http.cookies.get(SESSION_COOKIE)
        if not sid:
            return None
        record = self.store.get(f"sess:{digest(sid)}")
        if record is None or record["user"] not in self.provider.users:
            return None
        return record

    def _consented(self, username: str, client_id: str) -> set[str]:
        record = self.store.get(f"consent:{username}:{client_id}")
        return set(record["scopes"]) if record else set()

    # -- the authorization endpoint --------------------------------------------

    def authorize(self, http: HttpIn) -> Response:
        pushed = self._pushed(http)
        if isinstance(pushed, Response):
            return pushed
        http = pushed
        request = StarletteOAuth2Request(http)
        session = self.session(http)
        grant = None
        try:
            grant = self.server.get_consent_grant(
                request, end_user=session["user"] if session else None
            )
            payload = payload_of(request)
            audience = self._audience(payload.datalist)
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
            needs_consent = "consent" in prompts or (
                session is not None
                and not set(requested)
                <= self._consented(session["user"], client_of(request).client_id)
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
            return self._authorize_error(error)

        if not needs_login and not needs_consent and session is not None:
            subject = self._subject(
                session["user"], session["auth_time"], audience, session.get("sid", "")
            )
            return self._issue(http.params, subject, requested)

        bid, new_browser = self._browser(http)
        tx_id = secrets.token_urlsafe(24)
        transaction = {
            "params": http.params,
            "bid": bid,
            "csrf": secrets.token_urlsafe(24),
            "client_id": client_of(request).client_id,
            "scopes": requested,
            "audience": audience,
            "user": None if needs_login else session and session["user"],
            "auth_time": None if needs_login else session and session["auth_time"],
            "sid": None if needs_login else session and session.get("sid"),
            "force_consent": "consent" in prompts,
        }
        self.store.put(f"tx:{tx_id}", transaction, TRANSACTION_TTL)
        step = "/login" if needs_login else "/consent"
        response = RedirectResponse(self.provider.url(f"{step}?tx={tx_id}"), status_code=303)
        if new_browser:
            self._set_cookie(response, BROWSER_COOKIE, bid, None)
        return response

    # -- pushed authorization requests (RFC 9126) ------------------------------------

    #: Client authentication, not part of the authorization request that is kept.
    CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")

    def par(self, http: HttpIn) -> Response:
        """RFC 9126 section 2: the client authenticates as at `/token`; the request is
        checked as `/authorize` checks it (client, exact redirect URI, PKCE S256,
        scopes, audience); it is kept for PAR_TTL seconds and named by a `request_uri`."""
        request = StarletteOAuth2Request(http)
        try:
            client = cast(
                Client, self.server.authenticate_client(request, CLIENT_AUTH_METHODS, "par")
            )
            params = [(k, v) for k, v in http.form if k not in self.CLIENT_CREDENTIALS]
            names = [k for k, _ in params]
            if "request_uri" in names:
                raise InvalidRequestError("'request_uri' is not allowed in a pushed request.")
            if "request" in names:
                raise InvalidRequestError("Request objects ('request') are not supported.")
            sent = [v for k, v in params if k == "client_id"]
            if len(sent) > 1 or (sent and sent[0] != client.client_id):
                raise InvalidRequestError("'client_id' differs from the authenticated client.")
            if not sent:  # authenticated with HTTP Basic
                params.insert(0, ("client_id", client.client_id))
            query = urlencode(params)
            pushed = StarletteOAuth2Request(
                HttpIn("GET", self.provider.url(f"/authorize?{query}"), {}, query=params)
            )
            # Any signed-in user, so that `prompt=none` is checked when it is used.
            self.server.get_consent_grant(pushed, end_user="pushed")
            self._audience(payload_of(pushed).datalist)
        except OAuth2Error as error:
            # A JSON answer to the client, never a redirect (section 2.3).
            error.redirect_uri = None
            error.state = None
            return cast(Response, self.server.handle_error_response(request, error))
        request_uri = self.provider.push_request(client.client_id, params)
        return JSONResponse(
            {"request_uri": request_uri, "expires_in": PAR_TTL},
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    def _audience(self, datalist: Any) -> str | None:
        """`audience` (Auth0) or `resource` (RFC 8707): one known API identifier, or none."""
        values = list(dict.fromkeys([*datalist.get("audience", []), *datalist.get("resource", [])]))
        if not values:
            return None
        if len(values) > 1:
            raise InvalidTargetError("Ask for one audience (API identifier) at a time.")
        if values[0] not in self.provider.audiences:
            # (no echo of the value: error descriptions allow few characters)
            raise InvalidTargetError("Unknown audience (API identifier).")
        return values[0]

    def _pushed(self, http: HttpIn) -> HttpIn | Response:
        """RFC 9126 section 4: with `request_uri`, the request is the one pushed to
        `/par` (every other parameter but `client_id` is ignored); without one, the
        request as sent, unless IDP_REQUIRE_PAR says every request must be pushed."""
        values = dict(http.params)
        request_uri = values.get("request_uri")
        if request_uri is None:
            if self.provider.settings.require_par:
                return pages.error_page(
                    "Sign-in request refused: invalid_request",
                    "This provider accepts only pushed authorization requests (PAR, "
                    "RFC 9126): POST the request to the pushed_authorization_request_endpoint "
                    "first, then send only client_id and request_uri here.",
                )
            return http
        try:
            params = self.provider.take_pushed_request(request_uri, values.get("client_id", ""))
        except InvalidRequestUriError as error:
            # No redirect: nothing says the redirect URI belongs to this client.
            return pages.error_page(f"Sign-in request refused: {error.error}", error.description)
        return HttpIn(
            "GET",
            self.provider.url(f"/authorize?{urlencode(params)}"),
            http.headers,
            query=params,
            cookies=http.cookies,
            client=http.client,
        )

    @staticmethod
    def _too_old(session: Record, max_age: str | None, now: float) -> bool:
        """OIDC Core section 3.1.2.1: `max_age=0` is `prompt=login`; otherwise a sign-in
        longer ago than `max_age` seconds is asked for again."""
        if max_age is None or not max_age.isdigit():
            return False
        return int(max_age) == 0 or now - session["auth_time"] > int(max_age)

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

    def _authorize_error(self, error: OAuth2Error) -> Response:
        if error.redirect_uri:
            response = self.server.handle_error_response(cast(Any, None), error)
            return self._with_iss(cast(Response, response))
        detail = error.description or error.error or "invalid request"
        return pages.error_page(f"Sign-in request refused: {error.error}", str(detail))

    def _subject(self, username: str, auth_time: int, audience: str | None, sid: str) -> Subject:
        return Subject(username, int(auth_time), secrets.token_urlsafe(16), audience, sid=sid)

    def _issue(
        self, params: list[tuple[str, str]], subject: Subject | None, granted: list[str]
    ) -> Response:
        """Replay the validated request through authlib: a code, or `access_denied`."""
        query = urlencode(params)
        http = HttpIn("GET", self.provider.url(f"/authorize?{query}"), {}, query=params)
        request = StarletteOAuth2Request(http)
        try:
            grant = self.server.get_authorization_grant(request)
        except OAuth2Error as error:  # the request was valid minutes ago; config changed?
            return self._authorize_error(error)
        request.granted_scope = " ".join(granted)  # type: ignore[attr-defined]
        response = self.server.create_authorization_response(
            request, grant_user=subject, grant=grant
        )
        return self._with_iss(cast(Response, response))

    # -- transactions (sign-in and consent pages) ---------------------------------

    def _transaction(self, http: HttpIn, values: dict[str, str]) -> tuple[str, Record] | Response:
        """The parked request, if this browser started it and (POST) the form token matches."""
        tx_id = values.get("tx", "")
        record = self.store.get(f"tx:{tx_id}") if tx_id else None
        if record is None:
            return pages.error_page(
                "This sign-in has expired", "The sign-in page was open too long.", 400
            )
        bid = http.cookies.get(BROWSER_COOKIE, "")
        same_browser = secrets.compare_digest(bid.encode(), record["bid"].encode())
        token_ok = http.method == "GET" or secrets.compare_digest(
            values.get("csrf", "").encode(), record["csrf"].encode()
        )
        if not (same_browser and token_ok):
            return pages.error_page(
                "Sign-in form refused",
                "This form was not opened in this browser, or was already used.",
                403,
            )
        return tx_id, record

    def _fields(self, tx_id: str, record: Record) -> dict[str, str]:
        return {"tx": tx_id, "csrf": record["csrf"]}

    def login(self, http: HttpIn) -> Response:
        values = dict(http.params)
        found = self._transaction(http, values)
        if isinstance(found, Response):
            return found
        tx_id, record = found
        action = self.provider.url("/login")
        users = self.provider.shown_passwords
        if http.method == "GET":
            return pages.sign_in_page(
                action, self._fields(tx_id, record), users, record["client_id"]
            )

        username = values.get("username", "").strip()
        throttle = self.provider.throttle
        # Before the password is looked at, the same for known and unknown names.
        if wait := throttle.retry_after(username, http.client):
            minutes = max(1, math.ceil(wait / 60))
            return pages.sign_in_page(
                action,
                self._fields(tx_id, record),
                users,
                record["client_id"],
                error=(
                    "Too many failed sign-ins. Try again in "
                    f"{minutes} minute{'s' if minutes > 1 else ''}."
                ),
                status=429,
                headers={"Retry-After": str(wait)},
            )
        if not self.provider.check_password(username, values.get("password", "")):
            throttle.failed(username, http.client)
            return pages.sign_in_page(
                action,
                self._fields(tx_id, record),
                users,
                record["client_id"],
                error="Wrong user name or password.",
            )
        throttle.succeeded(username)
        # A new session cookie at each sign-in (no fixation); the old one ends. The
        # session's public id (`sid`) lives on when the same user signs in again
        # (prompt=login, max_age: step-up), as the provider session does; another
        # user's sign-in ends the old session for its clients too.
        session_id = ""
        if old := http.cookies.get(SESSION_COOKIE):
            previous = self.store.take(f"sess:{digest(old)}")
            if previous is not None and previous.get("user") == username:
                session_id = previous.get("sid", "")
            elif previous is not None:
                self.provider.end_session(previous.get("sid", ""), previous["user"])
        session_id = session_id or secrets.token_urlsafe(24)
        cookie = secrets.token_urlsafe(32)
        now = int(self.provider.clock())
        self.store.put(
            f"sess:{digest(cookie)}",
            {"user": username, "auth_time": now, "sid": session_id},
            self.provider.settings.session_ttl,
        )
        record.update(user=username, auth_time=now, sid=session_id)
        consented = self._consented(username, record["client_id"])
        if record["force_consent"] or not set(record["scopes"]) <= consented:
            self.store.put(f"tx:{tx_id}", record, TRANSACTION_TTL)
            response: Response = RedirectResponse(
                self.provider.url(f"/consent?tx={tx_id}"), status_code=303
            )
        else:
            response = self._finish(tx_id, record, record["scopes"])
        self._set_cookie(response, SESSION_COOKIE, cookie, self.provider.settings.session_ttl)
        return response

    def consent(self, http: HttpIn) -> Response:
        values = dict(http.params)
        found = self._transaction(http, values)
        if isinstance(found, Response):
            return found
        tx_id, record = found
        if not record.get("user"):
            return pages.error_page("Not signed in", "Sign in before giving consent.", 400)
        if http.method == "GET":
            return pages.consent_page(
                self.provider.url("/consent"),
                self._fields(tx_id, record),
                record["scopes"],
                record["client_id"],
                record["user"],
            )
        if values.get("decision") != "allow":
            return self._finish(tx_id, record, None)
        ticked = {value for name, value in http.form if name == "scope"}
        granted = [s for s in record["scopes"] if s in ticked or s == "openid"]
        self.store.put(
            f"consent:{record['user']}:{record['client_id']}", {"scopes": granted}, CONSENT_TTL
        )
        return self._finish(tx_id, record, granted)

    def _finish(self, tx_id: str, record: Record, granted: list[str] | None) -> Response:
        if self.store.take(f"tx:{tx_id}") is None:  # one use, even if two tabs race
            return pages.error_page("This sign-in was already completed", "Start again.", 400)
        subject = None
        if granted is not None:
            subject = self._subject(
                record["user"], record["auth_time"], record["audience"], record.get("sid") or ""
            )
        params = [tuple(pair) for pair in record["params"]]
        return self._issue(params, subject, granted or [])  # type: ignore[arg-type]

    # -- end session ---------------------------------------------------------------

    def logout(self, http: HttpIn) -> Response:
        """RP-Initiated Logout 1.0: ends this browser's provider session.

        Without a prompt only when the request names the signed-in user (see
        `_names_session_user`); anything else gets a confirmation form, so a link
        or form elsewhere cannot sign users out (SECURITY.md item 35). The browser
        goes back only to a post-logout URI registered for the client, which is
        named by `client_id` or by the ID token's audience.
        """
        try:
            # (typeshed's authlib stubs predate validate_endpoint_request)
            end = cast(Any, self.server).validate_endpoint_request("end_session", http)
        except OAuth2Error as error:
            detail = error.description or error.error or "invalid request"
            return pages.error_page("Sign-out request refused", str(detail))
        values = dict(http.params)
        if values.get("client_id") and end.client is None:
            return pages.error_page("Sign-out request refused", "Unknown client.")
        session = self.session(http)
        if not self._names_session_user(end, session) and not self._logout_confirmed(http, values):
            bid, new_browser = self._browser(http)
            token = secrets.token_urlsafe(24)
            self.store.put(f"logout:{token}", {"bid": bid}, TRANSACTION_TTL)
            fields = {k: v for k, v in values.items() if k != "csrf"} | {"csrf": token}
            response: Response = pages.logout_confirm_page(self.provider.url("/logout"), fields)
            if new_browser:
                self._set_cookie(response, BROWSER_COOKIE, bid, None)
            return response
        if cookie := http.cookies.get(SESSION_COOKIE):
            ended = self.store.take(f"sess:{digest(cookie)}")
            if ended is not None:  # Back-Channel Logout: every client of this session
                self.provider.end_session(ended.get("sid", ""), ended["user"])
        response = (
            self.server.create_endpoint_response("end_session", end) or pages.signed_out_page()
        )
        response.delete_cookie(SESSION_COOKIE, path=self.cookie_path)
        return response

    @staticmethod
    def _names_session_user(end: EndSessionRequest, session: Record | None) -> bool:
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
        return bool(named) and all(sub == session["user"] for sub in named)

    def _logout_confirmed(self, http: HttpIn, values: dict[str, str]) -> bool:
        if http.method != "POST" or not values.get("csrf"):
            return False
        record = self.store.take(f"logout:{values['csrf']}")
        bid = http.cookies.get(BROWSER_COOKIE, "")
        return record is not None and secrets.compare_digest(bid.encode(), record["bid"].encode())


# ------------------------------------------------------------------------------
# Starlette wiring
# ------------------------------------------------------------------------------


async def read_request(request: Request, provider: Provider) -> HttpIn:
    """Everything a handler needs, read on the event loop; the URL comes from the
    issuer (configuration), never from the Host header."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            async with request.form() as data:
                form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    query = request.url.query
    url = provider.url(path) + (f"?{query}" if query else "")
    return HttpIn(
        method=request.method,
        url=url,
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=form,
        cookies=request.cookies,
        client=request.client.host if request.client else "",
    )


def _endpoint(provider: Provider, handler: Callable[[HttpIn], Response]) -> Callable[..., Any]:
    def guarded(http: HttpIn) -> Response:
        try:
            return handler(http)
        except ValueError as error:
            if not is_bad_input(error):
                raise
            body = {"error": "invalid_request", "error_description": "Characters not allowed."}
            return JSONResponse(body, status_code=400, headers={"Cache-Control": "no-store"})

    async def endpoint(request: Request) -> Response:
        http = await read_request(request, provider)
        # authlib and the store are synchronous (Redis calls block): off the loop.
        return await run_in_threadpool(guarded, http)

    return endpoint


def build_app(provider: Provider) -> Starlette:
    interaction = Interaction(provider)
    server = provider.server

    async def discovery(request: Request) -> Response:
        return JSONResponse(provider.metadata(), headers={"Cache-Control": "max-age=300"})

    async def jwks(request: Request) -> Response:
        return JSONResponse(provider.keys.jwks(), headers={"Cache-Control": "max-age=300"})

    async def avatar(request: Request) -> Response:
        # Any name gets its avatar: the answer must not tell which users exist.
        name = request.path_params["name"]
        return Response(
            pages.avatar_svg(name),
            media_type="image/svg+xml",
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    def token(http: HttpIn) -> Response:
        return cast(Response, server.create_token_response(http))

    def revoke(http: HttpIn) -> Response:
        return server.create_endpoint_response("revocation", http)

    def userinfo(http: HttpIn) -> Response:
        if "authorization" not in http.headers:
            # RFC 6750 section 3.1: no credentials, no error code.
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer realm="idp"'})
        return server.create_endpoint_response("userinfo", http)

    def route(path: str, handler: Callable[[HttpIn], Response], methods: list[str]) -> Route:
        return Route(path, _endpoint(provider, handler), methods=methods)

    get_post = ["GET", "POST"]
    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/.well-known/oauth-authorization-server", discovery),
            Route("/.well-known/jwks.json", jwks),
            Route("/avatar/{name}.svg", avatar),
            route("/authorize", interaction.authorize, get_post),
            route("/login", interaction.login, get_post),
            route("/consent", interaction.consent, get_post),
            route("/logout", interaction.logout, get_post),
            route("/token", token, ["POST"]),
            route("/par", interaction.par, ["POST"]),
            route("/revoke", revoke, ["POST"]),
            route("/userinfo", userinfo, get_post),
        ]
    )
    app.state.provider = provider
    return app


#: Where the app receives Logout Tokens, on the backend (as `/auth/login`).
BACKCHANNEL_LOGOUT_PATH = "/auth/backchannel-logout"


def default_client(client_id: str, secret: str | None, backend: str | None = None) -> Client:
    """The app's own client: redirect and post-logout URIs of dev, prod and static set-ups,
    and the back-channel logout URI `{backend}/auth/backchannel-logout` (with `sid`).

    Only the app's `/callback` pages (and IDP_REDIRECT_URIS): the API docs have a
    client of their own (`docs_client`). `backend` defaults to this backend's URL.
    """
    if backend is None:
        from pingapp.settings import backend_url

        backend = backend_url()
    settings = get_idp_settings()
    origins = frontend_origins()
    return Client(
        client_id=client_id,
        redirect_uris=tuple(
            dict.fromkeys([*(f"{o}/callback" for o in origins), *settings.redirect_uris])
        ),
        post_logout_redirect_uris=tuple(
            dict.fromkeys([*(f"{o}/" for o in origins), *settings.post_logout_redirect_uris])
        ),
        secret=secret,
        backchannel_logout_uri=f"{backend.rstrip('/')}{BACKCHANNEL_LOGOUT_PATH}",
        backchannel_logout_session_required=True,
    )


def docs_client(backend: str) -> Client:
    """The API docs' client (`DOCS_CLIENT_ID`): public (PKCE, no secret), and its only
    redirect URIs are the OpenAPI page's `/api/docs/oauth2-redirect` on the backend's
    origins; no post-logout URIs."""
    origins = [backend.rstrip("/"), *frontend_origins()]
    return Client(
        client_id=DOCS_CLIENT_ID,
        redirect_uris=tuple(dict.fromkeys(f"{o}{DOCS_REDIRECT_PATH}" for o in origins)),
    )


def create_idp(
    *,
    issuer: str | None = None,
    settings: IdpSettings | None = None,
    clients: list[Client] | None = None,
    audiences: list[str] | None = None,
    store: Store | None = None,
    keys: SigningKeys | None = None,
    clock: Callable[[], float] = time.time,
    logout_delivery: LogoutDelivery | None = None,
) -> Starlette:
    """The provider as an ASGI app, to mount at `/idp` (its issuer's path).

    Every argument defaults to the configuration (pingapp's settings and `IDP_*`);
    `clock` is for tests that move time (sign-in times and `max_age`, pushed
    requests' expiry, the sign-in throttle); `logout_delivery` sends back-channel
    Logout Tokens (its own httpx client, 3 attempts within 10 s, by default).
    """
    from pingapp.settings import backend_url, get_settings

    app_settings = get_settings()
    settings = settings or get_idp_settings()
    if issuer is None:
        issuer = app_settings.effective_issuer(backend_url())
    if clients is None:
        secret = app_settings.auth_client_secret
        clients = [
            default_client(
                app_settings.auth_client_id,
                secret.get_secret_value() if secret else None,
                backend_url(),
            ),
            docs_client(backend_url()),
        ]
    if audiences is None:
        audiences = [a for a in [app_settings.auth_audience, *settings.audiences] if a]
    if keys is None:
        pem = settings.signing_key.get_secret_value() if settings.signing_key else None
        keep = max(settings.access_token_ttl, settings.id_token_ttl) + 60
        keys = load_signing_keys(settings.key_dir, pem, keep_retired_for=keep)
    provider = Provider(
        issuer=issuer,
        settings=settings,
        clients=clients,
        audiences=audiences,
        scopes=app_settings.auth_scope.split(),
        store=store or store_for(settings.redis_url),
        keys=keys,
        clock=clock,
        logout_delivery=logout_delivery,
    )
    log.warning("embedded development OpenID Provider at %s (not for production)", provider.issuer)
    return build_app(provider)
