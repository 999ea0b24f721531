"""Pushed authorization requests (RFC 9126).

At `/par` a client authenticates as at `/token` and sends its authorization request,
which is checked as `/authorize` checks it (client, exact redirect URI, PKCE S256,
scopes, audience), kept for `PAR_TTL` seconds and named by a `request_uri`. At
`/authorize`, a `request_uri` stands for that request: once, for the client that
pushed it, before it expires on the provider's clock. With IDP_REQUIRE_PAR, every
authorization request must come this way.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, cast

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from starlette.responses import JSONResponse, Response

from pingapp.devidp import pages
from pingapp.devidp import records as r
from pingapp.devidp.adapter import HttpIn, StarletteOAuth2Request, authorize_request, payload_of
from pingapp.devidp.grants import CLIENT_AUTH_METHODS, InvalidRequestUriError, requested_audience
from pingapp.devidp.models import Client
from pingapp.devidp.records import digest

if TYPE_CHECKING:
    from pingapp.devidp.provider import Provider

#: RFC 9126 section 2.2: the prefix of a pushed request's handle.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: How long a pushed authorization request can be used (RFC 9126 suggests 5 to 600 s).
PAR_TTL = 60
#: Client authentication, not part of the authorization request that is kept.
CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")


class PushedRequests:
    """The `/par` endpoint, and the pushed requests `/authorize` resolves."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.records = provider.records

    def endpoint(self, http: HttpIn) -> Response:
        """RFC 9126 section 2: 201 with `request_uri`, or a JSON error (never a redirect)."""
        server = self.provider.server
        request = StarletteOAuth2Request(http)
        try:
            client = cast(Client, server.authenticate_client(request, CLIENT_AUTH_METHODS, "par"))
            params = [(k, v) for k, v in http.form if k not in CLIENT_CREDENTIALS]
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
            pushed = StarletteOAuth2Request(authorize_request(self.provider.url, params))
            # Any signed-in user, so that `prompt=none` is checked when it is used.
            server.get_consent_grant(pushed, end_user="pushed")
            requested_audience(payload_of(pushed).datalist, self.provider.audiences)
        except OAuth2Error as error:
            # A JSON answer to the client, never a redirect (section 2.3).
            error.redirect_uri = None
            error.state = None
            return cast(Response, server.handle_error_response(request, error))
        return JSONResponse(
            {"request_uri": self.push(client.client_id, params), "expires_in": PAR_TTL},
            status_code=201,
            headers={"Cache-Control": "no-store"},
        )

    def push(self, client_id: str, params: list[tuple[str, str]]) -> str:
        """Keep a validated authorization request; its `request_uri`."""
        handle = secrets.token_urlsafe(32)
        pushed = r.PushedRequest(client_id, params)
        self.records.put(r.PUSHED_REQUESTS, pushed, digest(handle), ttl=PAR_TTL)
        return REQUEST_URI_PREFIX + handle

    def take(self, request_uri: str, client_id: str) -> list[tuple[str, str]]:
        """The pushed parameters, once: for the client that pushed them, before they expire.

        Raises `InvalidRequestUriError` otherwise; a wrong client does not use it up.
        """
        unknown = InvalidRequestUriError("Unknown or already used 'request_uri'.")
        if not request_uri.startswith(REQUEST_URI_PREFIX):
            raise unknown
        key = digest(request_uri.removeprefix(REQUEST_URI_PREFIX))
        found = self.records.read(r.PUSHED_REQUESTS, key, remove=False)
        if found is None:
            raise unknown
        if not secrets.compare_digest(found.record.client_id.encode(), client_id.encode()):
            raise InvalidRequestUriError("This 'request_uri' was pushed by another client.")
        taken = self.records.read(r.PUSHED_REQUESTS, key, remove=True)
        if taken is None:  # one use, even if two tabs race
            raise unknown
        if self.records.live(taken) is None:
            raise InvalidRequestUriError("This 'request_uri' has expired.")
        return taken.record.params

    def resolve(self, http: HttpIn) -> HttpIn | Response:
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
            params = self.take(request_uri, values.get("client_id", ""))
        except InvalidRequestUriError as error:
            # No redirect: nothing says the redirect URI belongs to this client.
            return pages.error_page(f"Sign-in request refused: {error.error}", error.description)
        request = authorize_request(self.provider.url, params)
        return HttpIn(
            request.method,
            request.url,
            http.headers,
            query=params,
            cookies=http.cookies,
            client=http.client,
        )
