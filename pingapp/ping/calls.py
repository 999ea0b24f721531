"""One call to the API, turned into what the ping page shows."""

from __future__ import annotations

import dataclasses
import time

import httpx2

from pingapp.web.challenges import challenge_error


@dataclasses.dataclass(frozen=True)
class PingResult:
    """The outcome of one ping, in words a user can act on."""

    ok: bool
    message: str
    status_code: int = 0  # 0: no HTTP answer at all
    elapsed_ms: float = 0.0
    #: The API wants a more recent sign-in (RFC 9470 `insufficient_user_authentication`).
    step_up: bool = False


def _reason(response: httpx2.Response) -> str:
    """The API's own explanation of an error answer, if it gave one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key].rstrip(".")
    return response.reason_phrase or "no explanation given"


def explain_status(response: httpx2.Response, url: str) -> str:
    """What an error status means for the user, and what to do about it."""
    status = response.status_code
    reason = _reason(response)
    if status == 401:
        return f"Not authorized (401): {reason}. Sign in again, then retry."
    if status == 403:
        return f"Forbidden (403): {reason}. Sign in again and grant the missing permission."
    if status == 404:
        return f"Not found (404) at {url}. Check API_URL: it should end with the API's prefix."
    if status >= 500:
        return f"The API failed ({status}): {reason}. Try again, or check the API's log."
    return f"The API refused the call ({status}): {reason}."


async def call_api(
    client: httpx2.AsyncClient, url: str, auth: httpx2.Auth | None = None
) -> PingResult:
    """GET `url` and describe the answer; never raises for network trouble."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        response = await client.get(url, auth=auth) if auth else await client.get(url)
    except httpx2.TimeoutException:
        return PingResult(
            ok=False,
            message=f"The API at {url} did not answer in time. Try again in a moment.",
            elapsed_ms=elapsed(),
        )
    except httpx2.TooManyRedirects:
        return PingResult(
            ok=False,
            message=f"The API at {url} redirected too many times. Check API_URL.",
            elapsed_ms=elapsed(),
        )
    except httpx2.TransportError:
        return PingResult(
            ok=False,
            message=(
                f"The API at {url} could not be reached. Is it running? "
                "Check API_URL and try again."
            ),
            elapsed_ms=elapsed(),
        )
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return PingResult(True, body["message"], response.status_code, elapsed())
        return PingResult(
            False,
            f"The API at {url} answered {response.status_code} without a message. "
            "Check that API_URL points at this app's API.",
            response.status_code,
            elapsed(),
        )
    if any(
        challenge_error(response, scheme) == "insufficient_user_authentication"
        for scheme in ("bearer", "dpop")
    ):
        return PingResult(
            False,
            f"Not authorized (401): {_reason(response)}. Press Sign in again: the "
            "provider will ask for your password, then call again.",
            response.status_code,
            elapsed(),
            step_up=True,
        )
    return PingResult(False, explain_status(response, url), response.status_code, elapsed())
