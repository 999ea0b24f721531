"""Configuration from the environment or a `.env` file, validated once at start.

The variable names are the public interface listed in docs/configuration.md. Every value is
checked here, so a mistake is reported once, at start, with a message that says
what to change, instead of surfacing later as a confusing login or API error.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pingapp.core.jwks import ASYMMETRIC_ALGORITHMS
from pingapp.core.singleflight import FAILURE_COOLDOWN
from pingapp.routes import API, IDP
from pingapp.urls import http_url, is_secure_url, origin_of

#: The API identifier asked for at login and required by the API when
#: AUTH_AUDIENCE is not set. With the embedded provider it just works; with
#: Auth0 it must match the identifier of an API created in the dashboard.
DEFAULT_AUDIENCE = "urn:pingapp:api"
DEFAULT_SCOPE = "openid profile email offline_access read:messages"
DEFAULT_CLIENT_ID = "pingapp"
#: The embedded provider's client for the API's docs page (Swagger UI's "Authorize"):
#: a public client of its own, whose only redirect URI is the docs page's
#: `/api/docs/oauth2-redirect`, so that URI is no way into the app's own client
#: (AUTH_CLIENT_ID).
EMBEDDED_DOCS_CLIENT_ID = "pingapp-docs"

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:\d{1,5})?$")

CommaList = Annotated[list[str], NoDecode]
Networks = Annotated[list[IPv4Network | IPv6Network], NoDecode]


def split_commas(value: object) -> object:
    """Read `a, b,c` (the form an environment variable takes) as a list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting pingapp reads; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    auth_issuer: str | None = None
    auth0_domain: str | None = None
    auth_client_id: str = DEFAULT_CLIENT_ID
    auth_client_secret: SecretStr | None = None
    #: None (AUTH_AUDIENCE set to an empty string) asks for no audience: the
    #: provider then issues a token the API cannot verify, and the app warns.
    auth_audience: str | None = DEFAULT_AUDIENCE
    auth_scope: str = DEFAULT_SCOPE
    #: How the audience is sent at login: Auth0's `audience`, RFC 8707's
    #: `resource`, or both.
    auth_audience_param: Literal["audience", "resource", "both"] = "audience"
    auth_algorithms: CommaList = Field(default_factory=lambda: ["RS256"])
    #: Clock skew tolerated on exp / nbf / iat, in seconds.
    auth_leeway: int = Field(default=30, ge=0, le=60)
    #: Refuse access tokens whose header `typ` is not `at+jwt` (RFC 9068). Unset:
    #: required with the embedded provider, which sets it; Auth0 sends `JWT`.
    auth_require_at_jwt: bool | None = None
    #: How many verified access tokens the API keeps (each until its exp); 0: none.
    auth_token_cache_size: int = Field(default=4096, ge=0, le=1_000_000)
    #: The longest lifetime (`exp - iat`, seconds) the API accepts in an access
    #: token; a token meant to live longer is refused. 0: no ceiling.
    auth_max_token_lifetime: int = Field(default=0, ge=0)

    api_url: str | None = None
    #: The client id the API's docs page signs in with. Unset: the embedded
    #: provider's `pingapp-docs` client, or AUTH_CLIENT_ID with another provider.
    api_docs_client_id: str | None = None
    api_allowed_origins: CommaList = Field(default_factory=list)
    #: Browser origins allowed to call the API directly (CORS).
    cors_origins: CommaList = Field(default_factory=list)
    #: Seconds an outbound HTTP call (API, provider) may take in all.
    http_timeout: float = Field(default=10.0, gt=0, le=120)
    #: Seconds a ping may take before the page shows "Calling the API…"; a faster
    #: answer reaches the page in one update instead of two. 0: always at once.
    ping_spinner_delay: float = Field(default=0.1, ge=0, le=5)
    #: Mount the embedded provider even when the public URL is not loopback.
    idp_enabled: bool = False
    #: Absolute lifetime of a sign-in session in seconds, refreshes included.
    session_max_age: int = Field(default=86_400, ge=60, le=90 * 86_400)
    #: Key that encrypts sessions at rest (a Fernet key: 32 url-safe base64 bytes).
    #: Unset: generated once into an owner-only file beside the state files.
    session_encryption_key: SecretStr | None = None
    #: Pushed authorization requests (RFC 9126): when the provider advertises them,
    #: always (an error if it does not), or never.
    auth_use_par: Literal["auto", "true", "false"] = "auto"
    #: DPoP-bound tokens (RFC 9449): when the provider advertises them, always, or never.
    auth_dpop: Literal["auto", "required", "off"] = "auto"
    #: How recent a sign-in `/api/private-recent` wants (its token's `auth_time`).
    api_recent_auth_max_age: int = Field(default=300, ge=0, le=86_400)
    #: Refuse plain bearer tokens at the API: DPoP-bound ones (RFC 9449) only.
    api_require_dpop: bool = False
    #: DPoP proofs at the API must carry a server nonce (`DPoP-Nonce`), keyed by
    #: SESSION_ENCRYPTION_KEY (random per process when unset).
    api_dpop_nonce: bool = False
    #: Seconds a failed discovery or key-set fetch is answered from memory, without
    #: a new outbound call (docs/security.md 39).
    auth_failure_cooldown: float = Field(default=FAILURE_COOLDOWN, ge=0, le=300)
    #: Accept non-loopback `http://` URLs (issuer, API, public URL) in prod.
    allow_insecure_http: bool = False
    #: Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the
    #: client a throttle counts (`pingapp.web.clientaddr`, docs/security.md 51). Empty: the
    #: socket's peer is the client and the header is never read.
    trusted_proxies: Networks = Field(default_factory=list)
    #: Sign-ins one client address may start per minute at `/auth/login`, counted by
    #: each backend process (docs/security.md 47); more get 429 with Retry-After.
    login_rate_limit: int = Field(default=30, ge=1, le=100_000)

    _split = field_validator(
        "auth_algorithms", "api_allowed_origins", "cors_origins", mode="before"
    )(split_commas)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        """`10.0.0.2, 10.1.0.0/16, fd00::/8`: each an address or a network whose host
        bits are zero (`10.0.0.5/8` is refused rather than read as `10.0.0.0/8`), and
        not every address (`0.0.0.0/0`, `::/0`)."""
        value = split_commas(value)
        if not isinstance(value, list):
            return value
        networks: list[IPv4Network | IPv6Network] = []
        for entry in value:
            try:
                network = ipaddress.ip_network(entry.strip() if isinstance(entry, str) else entry)
            except (TypeError, ValueError) as error:
                msg = (
                    "TRUSTED_PROXIES takes comma-separated IP addresses or networks "
                    f"(10.0.0.2, 10.1.0.0/16), got {str(entry)!r}: {error}"
                )
                raise ValueError(msg) from None
            if network.prefixlen == 0:
                msg = (
                    f"TRUSTED_PROXIES: {str(entry)!r} trusts every address, so any client "
                    "could name itself in X-Forwarded-For; list your proxies instead"
                )
                raise ValueError(msg)
            networks.append(network)
        return networks

    @field_validator(
        "auth_issuer",
        "auth0_domain",
        "auth_audience",
        "api_url",
        "auth_client_secret",
        "session_encryption_key",
        "api_docs_client_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("auth_issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        http_url(value, "AUTH_ISSUER")
        if urlsplit(value).query or urlsplit(value).fragment:
            msg = f"AUTH_ISSUER must not have a query or fragment, got {value!r}"
            raise ValueError(msg)
        return value

    @field_validator("auth0_domain")
    @classmethod
    def _check_auth0_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # People paste the domain with its scheme or a trailing slash; accept both.
        domain = re.sub(r"^https?://", "", value.strip()).rstrip("/")
        if not _HOSTNAME.match(domain):
            msg = (
                "AUTH0_DOMAIN must be a host name such as 'your-tenant.us.auth0.com' "
                f"(the 'Domain' field of your Auth0 application), got {value!r}"
            )
            raise ValueError(msg)
        return domain

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value, "API_URL").rstrip("/")

    @field_validator("session_encryption_key")
    @classmethod
    def _check_session_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                Fernet(value.get_secret_value().encode())
            except ValueError:
                msg = (
                    "SESSION_ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 "
                    'bytes); make one with: python -c "from cryptography.fernet import '
                    'Fernet; print(Fernet.generate_key().decode())"'
                )
                raise ValueError(msg) from None
        return value

    @field_validator("api_allowed_origins", "cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for entry in value:
            http_url(entry, "each origin")
            if "@" in urlsplit(entry).netloc:
                msg = f"an origin must not contain user information, got {entry!r}"
                raise ValueError(msg)
        return [entry.rstrip("/") for entry in value]

    @field_validator("auth_algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str]) -> list[str]:
        if not value:
            msg = "AUTH_ALGORITHMS must name at least one algorithm, e.g. RS256"
            raise ValueError(msg)
        for name in value:
            if name not in ASYMMETRIC_ALGORITHMS:
                msg = (
                    f"AUTH_ALGORITHMS: {name!r} is not allowed; use asymmetric "
                    f"algorithms only: {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
                )
                raise ValueError(msg)
        return value

    @field_validator("auth_scope")
    @classmethod
    def _check_scope(cls, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            msg = f"AUTH_SCOPE must include 'openid' to sign in, got {value!r}"
            raise ValueError(msg)
        return " ".join(scopes)

    @field_validator("auth_client_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            msg = "must not be empty"
            raise ValueError(msg)
        return value.strip()

    @model_validator(mode="after")
    def _one_issuer(self) -> Settings:
        if self.auth_issuer and self.auth0_domain:
            msg = (
                "set either AUTH_ISSUER or AUTH0_DOMAIN, not both "
                "(AUTH0_DOMAIN is a shortcut for AUTH_ISSUER=https://<domain>/)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _no_plain_http(self) -> Settings:
        """Tokens and codes travel to the issuer and the API: not in clear text
        over a network (docs/security.md item 40), unless explicitly allowed."""
        if self.allow_insecure_http:
            return self
        for name, url in (("AUTH_ISSUER", self.auth_issuer), ("API_URL", self.api_url)):
            if url is not None and not is_secure_url(url):
                msg = (
                    f"{name} is {url!r}: plain http:// is only allowed to this machine "
                    "(localhost, 127.0.0.1, ::1). Use https://, or set "
                    "ALLOW_INSECURE_HTTP=1 if this network is trusted."
                )
                raise ValueError(msg)
        return self

    @property
    def docs_client_id(self) -> str:
        """The client the API's docs page signs in with (API_DOCS_CLIENT_ID)."""
        if self.api_docs_client_id:
            return self.api_docs_client_id
        return EMBEDDED_DOCS_CLIENT_ID if self.uses_embedded_provider else self.auth_client_id

    @property
    def key_fetch_timeout(self) -> float:
        """How long a request waits for the issuer's keys: HTTP_TIMEOUT, at most 5 s."""
        return min(self.http_timeout, 5.0)

    @property
    def issuer(self) -> str | None:
        """The external issuer, or None when the embedded provider is used."""
        if self.auth0_domain:
            return f"https://{self.auth0_domain}/"
        return self.auth_issuer

    @property
    def uses_embedded_provider(self) -> bool:
        return self.issuer is None

    def effective_issuer(self, backend_url: str) -> str:
        """The issuer in force: the external one, or the embedded provider's."""
        return self.issuer or f"{backend_url.rstrip('/')}{IDP}"

    def audience_params(self) -> dict[str, str]:
        """How an authorization request names the API (AUTH_AUDIENCE): Auth0's
        `audience`, RFC 8707's `resource`, or both (AUTH_AUDIENCE_PARAM)."""
        if not self.auth_audience:
            return {}
        names = {"both": ("audience", "resource")}.get(
            self.auth_audience_param, (self.auth_audience_param,)
        )
        return dict.fromkeys(names, self.auth_audience)

    def api_base_url(self, backend_url: str) -> str:
        """Where the pings go: API_URL, or this backend's `/api`."""
        return self.api_url or f"{backend_url.rstrip('/')}{API}"

    def allowed_origins(self, backend_url: str) -> list[str]:
        """Origins the token may be sent to: API_ALLOWED_ORIGINS or API_URL's."""
        return self.api_allowed_origins or [origin_of(self.api_base_url(backend_url))]


class ConfigurationError(SystemExit):
    """Raised at start when the configuration is invalid; its text says why."""


def explain(error: ValidationError) -> str:
    """Turn pydantic's report into one line per bad variable."""
    lines = ["pingapp: the configuration is invalid (environment or .env):"]
    for item in error.errors():
        name = "_".join(str(part) for part in item["loc"]).upper() or "configuration"
        reason = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"  - {name}: {reason}")
    return "\n".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read and validated on first use."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(explain(error)) from None


def check_public_url(url: str, settings: Settings, *, prod: bool) -> None:
    """In prod, browsers must reach the app over https (or on this machine): cookies
    and tokens would travel in clear otherwise. ALLOW_INSECURE_HTTP=true lifts it."""
    if prod and not is_secure_url(url) and not settings.allow_insecure_http:
        msg = (
            f"pingapp: the public URL {url} is plain http on another machine. Serve the "
            "app over https (PUBLIC_URL / REFLEX_DEPLOY_URL=https://...), or set "
            "ALLOW_INSECURE_HTTP=true to accept it knowingly."
        )
        raise ConfigurationError(msg)
