"""The provider is mounted at /idp only when no external issuer is configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pingapp.devidp import embedded_provider_mounts
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
