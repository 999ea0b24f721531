"""The provider is mounted at /idp only when no external issuer is configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pingapp.devidp import embedded_provider_mounts
from pingapp.devidp.config import DOCS_CLIENT_ID
from pingapp.settings import get_settings


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
    # the API docs' "Authorize" has a client of its own (SECURITY.md item 30)
    assert not [uri for uri in client.redirect_uris if "/api/docs" in uri]
    docs = provider.clients[DOCS_CLIENT_ID]
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
