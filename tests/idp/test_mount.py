"""The provider is mounted at /idp only when no external issuer is configured, and
then only on a loopback public URL with a backend listening on a loopback address
(BACKEND_HOST) unless IDP_ENABLED=1 (docs/security.md item 33)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from pingapp.devidp import backend_host, embedded_provider_mounts, is_loopback_url, should_mount
from pingapp.settings import EMBEDDED_DOCS_CLIENT_ID, Settings, get_settings
from tests.support.idp import serve, stop


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("AUTH_ISSUER", "AUTH0_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDP_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("name", "value"), [("AUTH_ISSUER", "https://issuer.example/"), ("AUTH0_DOMAIN", "t.example")]
)
def test_off_when_an_issuer_is_configured(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert embedded_provider_mounts() == []


def test_on_by_default_at_idp(fresh_settings: None, tmp_path: Path) -> None:
    mounts = embedded_provider_mounts()
    assert [m.path for m in mounts] == ["/idp"]
    assert (tmp_path / "keys" / "signing-keys.json").exists()
    provider = mounts[0].app.state.provider  # type: ignore[attr-defined]
    assert provider.issuer.endswith("/idp")
    client = provider.clients["pingapp"]
    assert "http://localhost:3000/callback" in client.redirect_uris
    assert "http://localhost:3000/" in client.post_logout_redirect_uris
    # Logout Tokens go to the app's backend, as `/auth/login` is there
    from pingapp.urls import backend_url

    assert client.backchannel_logout_uri == f"{backend_url()}/auth/backchannel-logout"
    assert client.backchannel_logout_session_required is True
    assert client.client_metadata["backchannel_logout_uri"] == client.backchannel_logout_uri
    # the API docs' "Authorize" has a client of its own (docs/security.md item 30)
    assert not [uri for uri in client.redirect_uris if "/api/docs" in uri]
    docs = provider.clients[EMBEDDED_DOCS_CLIENT_ID]
    assert docs.secret is None
    assert docs.post_logout_redirect_uris == ()
    assert "http://localhost:8000/api/docs/oauth2-redirect" in docs.redirect_uris
    assert all(uri.endswith("/api/docs/oauth2-redirect") for uri in docs.redirect_uris)


def test_registered_uris_follow_the_ports_and_extra_configuration(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pingapp.devidp.app import default_client

    monkeypatch.setenv("FRONTEND_PORT", "4173")
    monkeypatch.setenv("BACKEND_PORT", "8123")
    monkeypatch.setenv("IDP_REDIRECT_URIS", "https://app.example/callback")
    monkeypatch.setenv("IDP_POST_LOGOUT_REDIRECT_URIS", "https://app.example/")
    client = default_client("pingapp", None)
    on_backend = default_client("pingapp", None, "http://127.0.0.1:8123/")
    assert on_backend.backchannel_logout_uri == "http://127.0.0.1:8123/auth/backchannel-logout"
    for origin in ("http://localhost:4173", "http://127.0.0.1:8123", "http://localhost:3000"):
        assert f"{origin}/callback" in client.redirect_uris
        assert f"{origin}/" in client.post_logout_redirect_uris
    assert "https://app.example/callback" in client.redirect_uris
    assert "https://app.example/" in client.post_logout_redirect_uris
    assert client.secret is None  # a public client: PKCE, no secret


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IDP_USERS", "alice"),
        ("IDP_CODE_TTL", "600"),
        ("IDP_REDIRECT_URIS", "not-a-url"),
    ],
)
def test_bad_provider_settings_stop_the_start_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from pingapp.devidp.config import get_idp_settings
    from pingapp.settings import ConfigurationError

    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        get_idp_settings()


# -- docs/security.md item 33: loopback only, unless IDP_ENABLED=1 ----------------------------


def settings_with(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # pyright: ignore[reportCallIssue]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000",
        "http://localhost",
        "https://localhost:8443",
        "http://127.0.0.1:8000",
        "http://127.10.20.30:3000",
        "http://[::1]:3000",
        "http://LOCALHOST:3000",
    ],
)
def test_mounts_on_a_loopback_public_url(url: str) -> None:
    assert is_loopback_url(url)
    mount, reason = should_mount(url, settings_with())
    assert mount
    assert "loopback" in reason


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example",
        "http://0.0.0.0:3000",
        "http://10.0.0.5:3000",
        "http://192.168.1.2:3000",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://evil.example/localhost",
        "http://[::ffff:7f00:1]:3000",
        "http://[fe80::1]:3000",
        "",
        "not a url",
    ],
)
def test_does_not_mount_on_a_public_url_and_says_what_to_set(url: str) -> None:
    assert not is_loopback_url(url)
    mount, reason = should_mount(url, settings_with())
    assert not mount
    for advice in ("AUTH_ISSUER", "AUTH0_DOMAIN", "IDP_ENABLED=1", "not loopback"):
        assert advice in reason


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "localhost", "::1"])
def test_mounts_with_a_loopback_backend_host(host: str) -> None:
    mount, reason = should_mount("http://localhost:3000", settings_with(), host)
    assert mount
    assert host in reason


#: What BACKEND_HOST says to listen on every interface (a value here, nothing binds it).
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize(
    "host", [EVERY_INTERFACE, "::", "10.0.0.5", "192.168.1.2", "app.example", ""]
)
def test_does_not_mount_when_the_backend_listens_beyond_loopback(host: str) -> None:
    """A loopback public URL is not enough: other machines reach the backend itself."""
    mount, reason = should_mount("http://localhost:3000", settings_with(), host)
    assert not mount
    for advice in (f"BACKEND_HOST={host}", "not loopback", "IDP_ENABLED=1", "AUTH_ISSUER"):
        assert advice in reason
    mount, reason = should_mount("http://localhost:3000", settings_with(idp_enabled=True), host)
    assert mount
    assert "IDP_ENABLED" in reason
    assert "not for production" in reason


def test_the_backend_host_is_reflexs(monkeypatch: pytest.MonkeyPatch) -> None:
    from reflex.config import get_config

    monkeypatch.setattr(get_config(), "backend_host", EVERY_INTERFACE)
    assert backend_host() == EVERY_INTERFACE


def test_idp_enabled_mounts_on_a_public_url_with_a_warning_reason() -> None:
    mount, reason = should_mount("https://app.example", settings_with(idp_enabled=True))
    assert mount
    assert "IDP_ENABLED" in reason
    assert "not for production" in reason


@pytest.mark.parametrize("url", ["http://localhost:3000", "https://app.example"])
def test_never_mounts_with_an_external_issuer(url: str) -> None:
    settings = settings_with(auth_issuer="https://issuer.example/", idp_enabled=True)
    mount, reason = should_mount(url, settings)
    assert not mount
    assert "external issuer" in reason


def served(tmp_path: Path, env: dict[str, str]) -> tuple[str, Any, Path]:
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        base, process = serve(
            tmp_path / "keys",
            factory="tests.idp.serve:build_mounted",
            health="/up",
            env={
                "AUTH_ISSUER": "",
                "AUTH0_DOMAIN": "",
                "IDP_ENABLED": "",
                "BACKEND_HOST": "",
                "REFLEX_BACKEND_HOST": "",
                **env,
            },
            stderr=stderr,
        )
    return base, process, log


def test_a_public_url_serves_no_provider_over_http(tmp_path: Path) -> None:
    base, process, log = served(tmp_path, {"REFLEX_DEPLOY_URL": "https://app.example"})
    try:
        for path in ("/.well-known/openid-configuration", "/authorize", "/login", "/token"):
            assert httpx2.get(f"{base}/idp{path}").status_code == 404
    finally:
        stop(process)
    text = log.read_text()
    assert "not mounted" in text
    assert "IDP_ENABLED=1" in text
    assert "AUTH_ISSUER" in text


def test_idp_enabled_serves_the_provider_on_a_public_url(tmp_path: Path) -> None:
    base, process, _ = served(
        tmp_path, {"REFLEX_DEPLOY_URL": "https://app.example", "IDP_ENABLED": "1"}
    )
    try:
        response = httpx2.get(f"{base}/idp/.well-known/openid-configuration")
        assert response.status_code == 200
    finally:
        stop(process)


def test_a_backend_on_every_interface_serves_no_provider_over_http(tmp_path: Path) -> None:
    """BACKEND_HOST=0.0.0.0 (read by rxconfig.py) with a loopback public URL."""
    env = {"REFLEX_DEPLOY_URL": "http://localhost:3000", "BACKEND_HOST": EVERY_INTERFACE}
    base, process, log = served(tmp_path, env)
    try:
        for path in ("/.well-known/openid-configuration", "/authorize", "/login", "/token"):
            assert httpx2.get(f"{base}/idp{path}").status_code == 404
    finally:
        stop(process)
    text = log.read_text()
    assert "BACKEND_HOST=0.0.0.0" in text
    assert "not mounted" in text


def test_idp_enabled_serves_the_provider_on_every_interface(tmp_path: Path) -> None:
    env = {"REFLEX_DEPLOY_URL": "http://localhost:3000", "BACKEND_HOST": EVERY_INTERFACE}
    base, process, log = served(tmp_path, {**env, "IDP_ENABLED": "1"})
    try:
        response = httpx2.get(f"{base}/idp/.well-known/openid-configuration")
        assert response.status_code == 200
    finally:
        stop(process)
    assert "IDP_ENABLED=1: serving the development provider although the backend" in (
        log.read_text()
    )


def test_a_loopback_url_serves_the_provider(tmp_path: Path) -> None:
    base, process, _ = served(tmp_path, {"REFLEX_DEPLOY_URL": "http://localhost:3000"})
    try:
        response = httpx2.get(f"{base}/idp/.well-known/openid-configuration")
        assert response.status_code == 200
    finally:
        stop(process)
