"""Settings of the embedded development provider (environment variables `IDP_*`).

They live here rather than in `pingapp/settings.py` because only the embedded
provider reads them; the app's own settings say *whether* it is mounted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pingapp.routes import API
from pingapp.settings import CommaList, ConfigurationError, split_commas
from pingapp.urls import http_url

#: The repository's root; the generated key goes to `<root>/.idp/` (git-ignored).
PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: RFC 6749 section 4.1.2: "A maximum authorization code lifetime of 10 minutes
#: is RECOMMENDED"; docs/security.md item 27 asks for 60 seconds at most.
MAX_CODE_TTL = 60

#: The built-in demo users (`name:password`), the default of IDP_USERS. Their
#: passwords are public; they are the only ones the sign-in page ever shows.
DEMO_USERS = ("alice:alice", "bob:bob")

#: Where Swagger UI receives the authorization response for the API docs' client
#: (`pingapp.settings.EMBEDDED_DOCS_CLIENT_ID`), on the backend's origin.
DOCS_REDIRECT_PATH = API + "/docs/oauth2-redirect"


def users_by_name(entries: Iterable[str]) -> dict[str, str]:
    """`name:password` entries as `{name: password}`."""
    pairs = (entry.partition(":") for entry in entries)
    return {name.strip(): password for name, _, password in pairs}


class IdpSettings(BaseSettings):
    """What the embedded provider can be told; every value has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="IDP_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    #: Users as `name:password` pairs. Only the built-in DEMO_USERS have their
    #: passwords shown on the sign-in page.
    users: CommaList = Field(default_factory=lambda: list(DEMO_USERS))
    #: Redirect URIs registered for the app's client on top of the defaults
    #: (`/callback` of the dev, prod and static set-ups on localhost).
    redirect_uris: CommaList = Field(default_factory=list)
    #: Post-logout redirect URIs registered on top of the defaults (`/`).
    post_logout_redirect_uris: CommaList = Field(default_factory=list)
    #: Audiences (API identifiers) a token may be asked for, on top of AUTH_AUDIENCE.
    audiences: CommaList = Field(default_factory=list)
    #: An RSA private key (PEM). Unset: one is generated and kept in `key_dir`.
    signing_key: SecretStr | None = None
    key_dir: Path = PROJECT_ROOT / ".idp"
    code_ttl: int = Field(default=MAX_CODE_TTL, ge=1, le=MAX_CODE_TTL)
    access_token_ttl: int = Field(default=600, ge=10, le=86_400)
    id_token_ttl: int = Field(default=3600, ge=10, le=86_400)
    #: Absolute lifetime of a grant: refresh tokens stop working after it.
    refresh_token_ttl: int = Field(default=86_400, ge=60, le=30 * 86_400)
    session_ttl: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
    #: RFC 9126: refuse authorization requests that were not pushed to `/par` first
    #: (discovery then says `require_pushed_authorization_requests: true`).
    require_par: bool = False
    #: RFC 9449 section 8: DPoP proofs at `/token` and `/userinfo` must carry a recent
    #: server nonce (answered `use_dpop_nonce` with a `DPoP-Nonce` header otherwise).
    dpop_nonce: bool = False
    #: Failed sign-ins a user name may have in a window before it is locked.
    signin_max_failures: int = Field(default=5, ge=1, le=1000)
    #: Failed sign-ins (any names) a client address may have in a window.
    signin_max_failures_per_address: int = Field(default=20, ge=1, le=10_000)
    #: The throttle's window, seconds; a lock lasts one to two windows.
    signin_window: int = Field(default=300, ge=10, le=86_400)
    #: Where codes, sessions and refresh tokens live when several workers run.
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("IDP_REDIS_URL", "REFLEX_REDIS_URL")
    )

    _split = field_validator(
        "users", "redirect_uris", "post_logout_redirect_uris", "audiences", mode="before"
    )(split_commas)

    @field_validator("signing_key", "redis_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("users")
    @classmethod
    def _check_users(cls, value: list[str]) -> list[str]:
        for entry in value:
            name, sep, password = entry.partition(":")
            if not sep or not name.strip() or not password:
                msg = f"IDP_USERS entries look like 'name:password', got {entry.split(':')[0]!r}"
                raise ValueError(msg)
        return value

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _check_uris(cls, value: list[str]) -> list[str]:
        for uri in value:
            http_url(uri, "each redirect URI")
        return value

    def demo_users(self) -> dict[str, str]:
        """The users in force (IDP_USERS) by name, with their passwords."""
        return users_by_name(self.users)

    def shown_passwords(self) -> dict[str, str]:
        """What the sign-in page may list: the built-in demo users and their public
        passwords when they are the users in force; nothing once IDP_USERS is set
        to anything else (those passwords are someone's secrets)."""
        users = self.demo_users()
        return users if users == users_by_name(DEMO_USERS) else {}


def frontend_origins() -> list[str]:
    """Origins the app's pages may be served from on this machine.

    Dev serves pages on 3000, prod on one shared port, a static export wherever
    FRONTEND_PORT says; Reflex's `deploy_url` names the one in force.
    """
    ports = {"3000", "8000", os.environ.get("FRONTEND_PORT"), os.environ.get("BACKEND_PORT")}
    origins = [
        f"http://{host}:{port}"
        for port in sorted(p for p in ports if p and p.isdigit())
        for host in ("localhost", "127.0.0.1")
    ]
    from reflex.config import get_config

    deploy_url = get_config().deploy_url
    if deploy_url:
        origins.insert(0, deploy_url.rstrip("/"))
    return list(dict.fromkeys(origins))


def get_idp_settings() -> IdpSettings:
    """Read and check `IDP_*`, with one line per bad variable on error."""
    try:
        return IdpSettings()
    except ValidationError as error:
        lines = ["pingapp: the development provider's configuration is invalid (IDP_*):"]
        for item in error.errors():
            name = "_".join(str(part) for part in item["loc"]).upper()
            name = name if name.startswith(("IDP_", "REFLEX_")) else f"IDP_{name}"
            lines.append(f"  - {name}: {str(item['msg']).removeprefix('Value error, ')}")
        raise ConfigurationError("\n".join(lines)) from None
