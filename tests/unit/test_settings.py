"""Settings: defaults, parsing and a clear message for each bad value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pingapp.settings import (
    DEFAULT_AUDIENCE,
    EMBEDDED_DOCS_CLIENT_ID,
    ConfigurationError,
    Settings,
    check_public_url,
    explain,
    get_settings,
)
from pingapp.urls import is_secure_url, origin_of

#: Every variable Settings reads, so none leaks in from the shell running the tests.
NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No stray variable or .env file from the developer's shell leaks in."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def errors_for(**env: str) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**env)  # pyright: ignore[reportArgumentType]
    return explain(caught.value)


def test_defaults_use_the_embedded_provider() -> None:
    settings = Settings()
    assert settings.uses_embedded_provider
    assert settings.issuer is None
    assert settings.effective_issuer("http://localhost:8000") == "http://localhost:8000/idp"
    assert settings.auth_audience == DEFAULT_AUDIENCE
    assert "read:messages" in settings.auth_scope.split()
    assert settings.auth_algorithms == ["RS256"]
    assert settings.auth_client_secret is None


def test_api_url_defaults_to_this_backend() -> None:
    settings = Settings()
    assert settings.api_base_url("http://localhost:8000/") == "http://localhost:8000/api"
    assert settings.allowed_origins("http://localhost:8000") == ["http://localhost:8000"]


def test_api_url_and_allowlist_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_URL", "https://api.example.test:8443/v1/")
    monkeypatch.setenv("API_ALLOWED_ORIGINS", "https://api.example.test:8443, http://127.0.0.1:9")
    settings = Settings()
    assert settings.api_base_url("http://localhost:8000") == "https://api.example.test:8443/v1"
    assert settings.allowed_origins("http://localhost:8000") == [
        "https://api.example.test:8443",
        "http://127.0.0.1:9",
    ]


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("AUTH_AUDIENCE=https://my-api.example.test\n")
    assert Settings().auth_audience == "https://my-api.example.test"


def test_environment_beats_dotenv(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("AUTH_CLIENT_ID=from-file\n")
    monkeypatch.setenv("AUTH_CLIENT_ID", "from-env")
    assert Settings().auth_client_id == "from-env"


@pytest.mark.parametrize(
    "given",
    ["tenant.us.auth0.com", "https://tenant.us.auth0.com/", "http://tenant.us.auth0.com"],
)
def test_auth0_domain_is_a_shortcut_for_the_issuer(given: str) -> None:
    settings = Settings(auth0_domain=given)
    assert settings.issuer == "https://tenant.us.auth0.com/"
    assert not settings.uses_embedded_provider


def test_issuer_is_kept_exactly_as_given() -> None:
    # No trailing slash added or removed: `iss` must match exactly.
    assert Settings(auth_issuer="https://idp.example.test/realms/x").issuer == (
        "https://idp.example.test/realms/x"
    )


def test_empty_audience_means_none() -> None:
    assert Settings(auth_audience="").auth_audience is None


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"auth_issuer": "idp.example.test"}, "AUTH_ISSUER", "absolute http"),
        ({"auth_issuer": "https://idp.example.test/?x=1"}, "AUTH_ISSUER", "query"),
        ({"auth0_domain": "not a domain"}, "AUTH0_DOMAIN", "host name"),
        ({"api_url": "localhost:8000/api"}, "API_URL", "absolute http"),
        ({"api_allowed_origins": "ftp://x.test"}, "API_ALLOWED_ORIGINS", "absolute http"),
        ({"api_allowed_origins": "https://u@x.test"}, "API_ALLOWED_ORIGINS", "user information"),
        ({"auth_algorithms": "HS256"}, "AUTH_ALGORITHMS", "not allowed"),
        ({"auth_algorithms": "none"}, "AUTH_ALGORITHMS", "not allowed"),
        ({"auth_scope": "profile read:messages"}, "AUTH_SCOPE", "openid"),
        ({"auth_leeway": "600"}, "AUTH_LEEWAY", "less than or equal to 60"),
        ({"http_timeout": "0"}, "HTTP_TIMEOUT", "greater than 0"),
        ({"auth_audience_param": "aud"}, "AUTH_AUDIENCE_PARAM", "audience"),
        ({"auth_client_id": " "}, "AUTH_CLIENT_ID", "empty"),
        ({"trusted_proxies": "nginx"}, "TRUSTED_PROXIES", "IP addresses or networks"),
        ({"trusted_proxies": "10.0.0.5/8"}, "TRUSTED_PROXIES", "host bits set"),
        ({"trusted_proxies": "10.0.0.2, 10.0.0.0/33"}, "TRUSTED_PROXIES", "'10.0.0.0/33'"),
        ({"trusted_proxies": "0.0.0.0/0"}, "TRUSTED_PROXIES", "trusts every address"),
        ({"trusted_proxies": "::/0"}, "TRUSTED_PROXIES", "trusts every address"),
    ],
)
def test_each_bad_value_is_named_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, words: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key.upper(), value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    report = explain(caught.value)
    line = next(line for line in report.splitlines() if variable in line)
    assert words in line


def test_issuer_and_auth0_domain_together_are_refused() -> None:
    report = errors_for(auth_issuer="https://a.example.test/", auth0_domain="b.example.test")
    assert "either AUTH_ISSUER or AUTH0_DOMAIN" in report


def test_client_secret_is_not_shown_in_reprs() -> None:
    settings = Settings(auth_client_secret="s3cret-value")  # pyright: ignore[reportArgumentType]
    assert "s3cret-value" not in repr(settings)
    assert settings.auth_client_secret is not None
    assert settings.auth_client_secret.get_secret_value() == "s3cret-value"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://API.example.test:8443/v1?x", "https://api.example.test:8443"),
        ("http://user:pw@127.0.0.1:9/api", "http://127.0.0.1:9"),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_the_app_refuses_to_start_with_a_clear_message(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "AUTH_LEEWAY": "600", "API_URL": "nowhere"}
    done = subprocess.run(
        [sys.executable, "-c", "import pingapp.pingapp"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "AUTH_LEEWAY" in done.stderr
    assert "API_URL" in done.stderr
    assert "Traceback" not in done.stderr


# -- docs/security.md item 40: no plain http:// over a network ---------------------------


@pytest.mark.parametrize("variable", ["AUTH_ISSUER", "API_URL"])
@pytest.mark.parametrize(
    "url", ["http://idp.example.test/", "http://10.0.0.5:8080/x", "http://localhost.evil.test/"]
)
def test_plain_http_to_another_machine_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    report = explain(caught.value)
    assert f"{variable} is {url.rstrip('/')!r}" in report or f"{variable} is {url!r}" in report
    assert "https://" in report
    assert "ALLOW_INSECURE_HTTP" in report


@pytest.mark.parametrize("variable", ["AUTH_ISSUER", "API_URL"])
def test_plain_http_is_accepted_when_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://idp.example.test/")
    monkeypatch.setenv("ALLOW_INSECURE_HTTP", "1")
    settings = Settings()
    assert settings.allow_insecure_http


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.test/",
        "http://localhost:8000/idp",
        "http://127.0.0.1:9/",
        "http://127.8.9.10/",
        "http://[::1]:8000/",
    ],
)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert Settings(auth_issuer=url, api_url=url).auth_issuer == url


@pytest.mark.parametrize(
    ("url", "secure"),
    [
        ("https://idp.example.test", True),
        ("http://LOCALHOST:1", True),
        ("http://127.0.0.1", True),
        ("http://[::1]", True),
        ("http://idp.example.test", False),
        ("http://127.0.0.1.evil.test", False),
        ("http://0.0.0.0", False),
        ("ftp://127.0.0.1", False),
        ("https://", False),
    ],
)
def test_is_secure_url(url: str, secure: bool) -> None:
    assert is_secure_url(url) is secure


# -- the API's own settings ----------------------------------------------------------


def test_max_token_lifetime_defaults_to_no_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().auth_max_token_lifetime == 0
    monkeypatch.setenv("AUTH_MAX_TOKEN_LIFETIME", "86400")
    assert Settings().auth_max_token_lifetime == 86_400
    monkeypatch.setenv("AUTH_MAX_TOKEN_LIFETIME", "-1")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Settings()


def test_docs_client_defaults_to_the_embedded_providers_docs_client() -> None:
    assert Settings().docs_client_id == EMBEDDED_DOCS_CLIENT_ID == "pingapp-docs"


def test_docs_client_defaults_to_the_apps_client_with_another_provider() -> None:
    settings = Settings(auth_issuer="https://idp.example.test/", auth_client_id="my-app")
    assert settings.docs_client_id == "my-app"


def test_docs_client_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_DOCS_CLIENT_ID", "swagger")
    assert Settings().docs_client_id == "swagger"
    monkeypatch.setenv("API_DOCS_CLIENT_ID", "")
    assert Settings().docs_client_id == "pingapp-docs"


@pytest.mark.parametrize(
    ("url", "prod", "allowed", "refused"),
    [
        ("http://app.example.org", True, False, True),
        ("http://app.example.org", True, True, False),
        ("http://app.example.org", False, False, False),
        ("https://app.example.org", True, False, False),
        ("http://localhost:8080", True, False, False),
        ("http://127.0.0.1:3000", True, False, False),
    ],
)
def test_a_plain_http_public_url_is_refused_in_prod(
    url: str, prod: bool, allowed: bool, refused: bool
) -> None:
    settings = Settings(allow_insecure_http=allowed)
    if refused:
        with pytest.raises(ConfigurationError, match="ALLOW_INSECURE_HTTP"):
            check_public_url(url, settings, prod=prod)
    else:
        check_public_url(url, settings, prod=prod)


# -- docs/security.md item 51: the proxies whose X-Forwarded-For is believed ---------------------


def test_no_proxy_is_trusted_by_default() -> None:
    assert Settings().trusted_proxies == []


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipaddress import ip_network

    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.2, 10.1.0.0/16 ,fd00::/8,::1,")
    assert Settings().trusted_proxies == [
        ip_network("10.0.0.2/32"),
        ip_network("10.1.0.0/16"),
        ip_network("fd00::/8"),
        ip_network("::1/128"),
    ]
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    assert Settings().trusted_proxies == []


def test_a_bad_trusted_proxy_stops_the_start_with_one_line() -> None:
    report = errors_for(trusted_proxies="10.0.0.2, proxy.internal")
    lines = [line for line in report.splitlines() if "TRUSTED_PROXIES" in line]
    assert len(lines) == 1
    assert lines[0].startswith("  - TRUSTED_PROXIES: ")
    assert "'proxy.internal'" in lines[0]


def test_a_session_key_that_is_not_a_fernet_key_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SESSION_ENCRYPTION_KEY", "my-secret-key")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError) as raised:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "  - SESSION_ENCRYPTION_KEY: " in str(raised.value)
    assert "my-secret-key" not in str(raised.value)
