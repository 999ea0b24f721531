"""`pingapp.startup`: the refusals at start, the summary, and its printing once."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet

from pingapp import startup
from pingapp.oidc import session as session_module
from pingapp.oidc.errors import LoginError, ProviderUnavailable
from pingapp.settings import ConfigurationError, Settings

FRONTEND = "http://localhost:3000"
BACKEND = "http://localhost:8000"


@pytest.fixture(autouse=True)
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "session.key"
    monkeypatch.setattr(session_module, "KEY_FILE", path)
    return path


def refuse(settings: Settings, *, prod: bool = False) -> None:
    startup.refuse_bad_configuration(settings, frontend=FRONTEND, backend=BACKEND, prod=prod)


@pytest.mark.parametrize("issuer", [BACKEND + "/idp", BACKEND + "/idp/", FRONTEND + "/idp"])
def test_our_own_provider_as_issuer_is_explained(issuer: str) -> None:
    with pytest.raises(ConfigurationError, match="is this app's own /idp") as raised:
        refuse(Settings(auth_issuer=issuer))
    assert "Remove AUTH_ISSUER" in str(raised.value)


def test_a_good_configuration_passes_and_makes_the_key_once(key_file: Path) -> None:
    refuse(Settings())
    refuse(Settings(auth_issuer="http://localhost:8080/realms/demo"))
    made = key_file.read_bytes()
    Fernet(made)
    refuse(Settings())
    assert key_file.read_bytes() == made


def test_a_key_file_others_can_read_is_refused_in_one_line(key_file: Path) -> None:
    refuse(Settings())
    key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        refuse(Settings())


def test_a_key_file_without_a_key_is_refused_in_one_line(key_file: Path) -> None:
    key_file.parent.mkdir(mode=0o700)
    key_file.write_text("not a key")
    key_file.chmod(0o600)
    with pytest.raises(ConfigurationError, match="does not hold a session key") as raised:
        refuse(Settings())
    assert "not a key" not in str(raised.value)


def test_the_summary_names_the_provider_client_audience_and_the_uris() -> None:
    text = startup.summary(
        Settings(auth_issuer="https://id.example.test/", auth_client_id="abc"),
        frontend=FRONTEND,
        backend=BACKEND,
        embedded=False,
    )
    assert "https://id.example.test/" in text
    assert "abc" in text
    assert "urn:pingapp:api" in text
    assert f"{FRONTEND}/callback" in text
    assert f"{FRONTEND}/\n" in text + "\n"


def test_the_summary_of_the_embedded_provider_and_of_no_audience() -> None:
    text = startup.summary(
        Settings(auth_audience=""), frontend=FRONTEND, backend=BACKEND, embedded=True
    )
    assert f"embedded development provider at {BACKEND}/idp" in text
    assert "AUTH_AUDIENCE is empty" in text


def test_the_summary_is_printed_once_per_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert startup.announce("hello", tmp_path)
    assert not startup.announce("hello", tmp_path)  # another worker, or a hot reload
    assert capsys.readouterr().err == "hello\n"
    # A marker of a server that is gone is cleared; a new server prints again.
    (tmp_path / f"{startup.MARKER}999999999").touch()
    monkeypatch.setattr(os, "getppid", lambda: 999999998)
    assert startup.announce("again", tmp_path)
    assert not (tmp_path / f"{startup.MARKER}999999999").exists()
    assert capsys.readouterr().err == "again\n"


class FakeOIDC:
    """What `check_provider_soon` asks of the OIDC client."""

    def __init__(
        self,
        par: LoginError | None = None,
        dpop: LoginError | None = None,
        down: LoginError | None = None,
    ) -> None:
        self.par, self.dpop, self.down = par, dpop, down
        self.discovery = self  # `discovery.probe()`

    async def probe(self) -> dict:
        if self.down:
            raise self.down
        return {}

    async def uses_par(self) -> bool:
        if self.par:
            raise self.par
        return False

    async def new_dpop_key(self) -> str:
        if self.dpop:
            raise self.dpop
        return ""


@pytest.mark.parametrize(
    ("oidc", "warned"),
    [
        (FakeOIDC(), None),
        (
            FakeOIDC(par=ProviderUnavailable("The sign-in provider cannot be reached", "x")),
            "reached",
        ),
        (FakeOIDC(dpop=LoginError("The sign-in provider does not support DPoP", "y")), "DPoP"),
    ],
)
async def test_the_provider_is_checked_in_the_background(
    oidc: FakeOIDC, warned: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = SimpleNamespace(oidc=oidc)
    with caplog.at_level(logging.WARNING, logger="pingapp.startup"):
        startup.check_provider_soon(ctx)  # pyright: ignore[reportArgumentType]
        await asyncio.gather(*startup._checks)
    messages = [r.getMessage() for r in caplog.records if r.name == "pingapp.startup"]
    if warned is None:
        assert messages == []
    else:
        [message] = messages
        assert message.startswith("pingapp: sign-in cannot work yet: ")
        assert warned in message
