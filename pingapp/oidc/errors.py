"""What can go wrong while signing in, in words a user can act on.

`LoginError` carries a title and a detail for the page and a short `code` for
logs and tests; its subclasses tell the caller what to do about it.
"""

from __future__ import annotations


class LoginError(Exception):
    """A sign-in step failed; `title` and `detail` are shown to the user."""

    def __init__(self, title: str, detail: str, *, code: str = "") -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.code = code


class ProviderUnavailable(LoginError):
    """The provider could not be reached or answered garbage."""


class GrantRejected(LoginError):
    """The provider refused a code or refresh token (`invalid_grant`)."""


class LogoutTokenRefused(Exception):
    """A Logout Token that must not end any session; the text says why (no secrets)."""


_PROVIDER_ERRORS = {
    "access_denied": (
        "Sign-in was cancelled",
        "You declined, or the provider refused, access for this app. Press Log In to try again.",
    ),
    "login_required": (
        "Please sign in",
        "The provider needs you to sign in again. Press Log In to continue.",
    ),
    "consent_required": (
        "Your consent is needed",
        "The provider needs you to approve this app's access. Press Log In to continue.",
    ),
    "interaction_required": (
        "Please sign in",
        "The provider needs you to interact with it. Press Log In to continue.",
    ),
    "invalid_scope": (
        "The requested permissions are not available",
        "The provider refused the scope in AUTH_SCOPE. Check the API's permissions "
        "at the provider.",
    ),
    "invalid_target": (
        "The API is unknown to the provider",
        "The provider does not know AUTH_AUDIENCE. Create the API at the provider, or set "
        "AUTH_AUDIENCE to its identifier.",
    ),
}


def describe_provider_error(code: str, description: str) -> LoginError:
    """A provider's `error` on the callback, in words with a way forward."""
    title, detail = _PROVIDER_ERRORS.get(
        code,
        ("The sign-in provider reported an error", "Press Log In to try again."),
    )
    if description:
        detail = f"{detail} (The provider said: {description[:200]})"
    return LoginError(title, detail, code=code)
