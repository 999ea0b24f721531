"""Errors of the protected API, shaped as RFC 6750 section 3 says.

Every refusal is a `BearerError`: the status code, the `WWW-Authenticate`
challenge and a JSON body `{"error", "error_description", "message"}`. It is an
`HTTPException`, so a route in another FastAPI app that uses the dependencies
still answers with the right status and challenge; `install_error_handlers`
adds the RFC 6750 body. `challenge_all` rewrites the challenge to name every
scheme the API accepts: `Bearer` and `DPoP` (RFC 9449 section 7.1, with `algs`),
each with the RFC 9728 `resource_metadata` URL.

No text here ever contains the token: descriptions are fixed strings chosen by
the verifier, never an exception message from a parser.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from pingapp import telemetry
from pingapp.settings import get_settings
from pingapp.web.clientaddr import client_address

#: Error codes of RFC 6750 section 3.1.
INVALID_REQUEST = "invalid_request"
INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code
INSUFFICIENT_SCOPE = "insufficient_scope"
#: RFC 9470: the token is fine, but the sign-in behind it is too old.
INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"
#: The ASGI scope key under which the security dependency leaves the verified
#: token's `sub`, for the audit event of a refusal that comes after the check.
SUBJECT = "pingapp.subject"


def _quoted(value: str) -> str:
    """An RFC 7235 quoted-string: our texts are ASCII; escape `\\` and `"`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _challenge(scheme: str, params: Sequence[str]) -> str:
    return f"{scheme} {', '.join(params)}" if params else scheme


class BearerError(HTTPException):
    """A refused request: 400, 401 or 403 with its `WWW-Authenticate` challenge."""

    def __init__(
        self,
        status_code: int,
        error: str | None,
        description: str,
        *,
        scope: str | None = None,
        message: str | None = None,
        max_age: int | None = None,
        scheme: str = "Bearer",
    ) -> None:
        self.error = error
        self.description = description
        self.scope = scope
        self.message = message or description
        params = []
        if error is not None:
            params.append(f"error={_quoted(error)}")
            params.append(f"error_description={_quoted(description)}")
        if scope is not None:
            params.append(f"scope={_quoted(scope)}")
        if max_age is not None:
            params.append(f"max_age={max_age}")  # RFC 9470 section 3: a bare integer
        self.scheme = scheme
        self.params = params
        super().__init__(
            status_code=status_code,
            detail=self.message,
            headers={"WWW-Authenticate": _challenge(scheme, params)},
        )

    def challenge_all(
        self,
        *,
        accept_bearer: bool,
        algs: Sequence[str],
        resource_metadata: str | None,
        nonce: str | None = None,
    ) -> BearerError:
        """Name every scheme the API accepts (RFC 9449 section 7.1): this error under
        its scheme, a bare challenge for the other; `algs` in the DPoP one, the
        RFC 9728 metadata URL in both, and a `DPoP-Nonce` header when given."""
        where = [f"resource_metadata={_quoted(resource_metadata)}"] if resource_metadata else []
        own = self.params
        bearer = [*(own if self.scheme == "Bearer" else []), *where]
        dpop = [*(own if self.scheme == "DPoP" else []), f"algs={_quoted(' '.join(algs))}"]
        challenges = [_challenge("Bearer", bearer)] if accept_bearer else []
        challenges.append(_challenge("DPoP", [*dpop, *where]))
        self.headers = {"WWW-Authenticate": ", ".join(challenges)}
        if nonce is not None:
            self.headers["DPoP-Nonce"] = nonce
        return self

    def body(self) -> dict[str, str]:
        # With no credentials RFC 6750 wants no error code in the challenge;
        # the body still names what happened, in the same shape as the others.
        return {
            "error": self.error or "missing_token",
            "error_description": self.description,
            "message": self.message,
        }


def missing_token() -> BearerError:
    """No credentials at all: 401 and a bare `Bearer` challenge."""
    return BearerError(
        401,
        None,
        "No access token: send it as 'Authorization: Bearer <token>'.",
        message="You need to sign in to see this.",
    )


def invalid_request(description: str) -> BearerError:
    """Malformed credentials (two tokens, another scheme, a query token): 400."""
    return BearerError(400, INVALID_REQUEST, description)


def invalid_token(description: str, scheme: str = "Bearer") -> BearerError:
    """A token was sent and refused: 401 `invalid_token`."""
    return BearerError(
        401,
        INVALID_TOKEN,
        description,
        message="Your access token is not valid: sign in again.",
        scheme=scheme,
    )


def invalid_proof(error: str, description: str) -> BearerError:
    """A DPoP proof refused (RFC 9449 section 7.1): 401 `invalid_dpop_proof`, or
    `use_dpop_nonce` when the server's nonce is missing or stale."""
    return BearerError(
        401,
        error,
        f"The DPoP proof was refused: {description}.",
        message="The request's proof of possession was refused.",
        scheme="DPoP",
    )


def insufficient_scope(scopes: list[str], scheme: str = "Bearer") -> BearerError:
    """A valid token without the scopes the route needs: 403 naming them."""
    needed = " ".join(scopes)
    return BearerError(
        403,
        INSUFFICIENT_SCOPE,
        f"The access token lacks the scope {needed}.",
        scope=needed,
        message=f"You need the permission {needed} to see this.",
        scheme=scheme,
    )


def insufficient_user_authentication(max_age: int, scheme: str = "Bearer") -> BearerError:
    """A valid token whose `auth_time` is older than `max_age` seconds: 401 asking
    the client to sign the user in again (RFC 9470 step-up)."""
    return BearerError(
        401,
        INSUFFICIENT_USER_AUTHENTICATION,
        f"A sign-in within the last {max_age} seconds is required.",
        max_age=max_age,
        message=f"Sign in again: this needs a sign-in within the last {max_age} seconds.",
        scheme=scheme,
    )


def record_denial(request: Request, error: BearerError) -> None:
    """Telemetry of a refusal: the `pingapp.api.denials` count by reason, and an
    `api_denied` audit event (the user when a token was verified, the client's
    address; never the token)."""
    reason = error.error or "missing_token"
    telemetry.api_denial(reason, error.status_code)
    if not telemetry.audit_log.isEnabledFor(logging.INFO):
        return
    telemetry.audit(
        "api_denied",
        outcome="denied",
        user=str(request.scope.get(SUBJECT) or ""),
        address=client_address(request.scope, get_settings().trusted_proxies),
        reason=reason,
    )


async def _bearer_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BearerError)
    record_denial(request, exc)  # the answer itself depends on the error only
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(api: FastAPI) -> None:
    """Answer every `BearerError` raised by a dependency with the RFC 6750 body."""
    api.add_exception_handler(BearerError, _bearer_error_handler)
