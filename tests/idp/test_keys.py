"""docs/security.md item 29: the signing key is kept owner-only, or given by
configuration, and never committed; rotation keeps old keys published."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from joserfc.jwk import RSAKey

from pingapp.devidp.config import PROJECT_ROOT, IdpSettings
from pingapp.devidp.keys import (
    KEY_FILE,
    KeyFileError,
    load_signing_keys,
    new_key,
    rotate_signing_keys,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_running_provider_made_an_owner_only_key(idp: dict[str, Any], idp_key_dir: Path) -> None:
    key_file = idp_key_dir / KEY_FILE
    assert mode(key_file) == 0o600
    assert mode(idp_key_dir) == 0o700
    published = {k["kid"] for k in httpx2.get(idp["metadata"]["jwks_uri"]).json()["keys"]}
    assert load_signing_keys(idp_key_dir).kid in published


def test_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_signing_keys(tmp_path / "k")
    assert load_signing_keys(tmp_path / "k").kid == first.kid


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    kids: list[str] = []
    threads = [
        threading.Thread(target=lambda: kids.append(load_signing_keys(tmp_path / "k").kid))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 4
    assert len(set(kids)) == 1
    assert [p.name for p in (tmp_path / "k").iterdir()] == [KEY_FILE]  # no temp files left


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o666])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, loose: int) -> None:
    load_signing_keys(tmp_path)
    (tmp_path / KEY_FILE).chmod(loose)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_signing_keys(tmp_path)


def test_a_corrupt_key_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_text("{}")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a key file"):
        load_signing_keys(tmp_path)


def test_key_from_configuration_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = new_key().as_pem(private=True).decode()
    monkeypatch.setenv("IDP_SIGNING_KEY", pem)
    settings = IdpSettings(key_dir=tmp_path / "unused")
    assert settings.signing_key is not None
    keys = load_signing_keys(settings.key_dir, settings.signing_key.get_secret_value())
    assert keys.kid == RSAKey.import_key(pem).thumbprint()
    assert not (tmp_path / "unused").exists()


def test_a_garbage_key_in_configuration_is_refused_without_echoing_it() -> None:
    with pytest.raises(KeyFileError, match="not an RSA private key") as caught:
        load_signing_keys(Path("/nonexistent"), "secret-looking-garbage")
    assert "secret-looking-garbage" not in str(caught.value)


def test_a_public_key_in_configuration_is_refused() -> None:
    public = new_key().as_pem(private=False).decode()
    with pytest.raises(KeyFileError, match="private"):
        load_signing_keys(Path("/nonexistent"), public)


def test_default_key_location_is_outside_version_control() -> None:
    assert IdpSettings().key_dir == PROJECT_ROOT / ".idp"
    path = PROJECT_ROOT / ".idp" / KEY_FILE
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(path)], cwd=PROJECT_ROOT, check=False
    )
    assert ignored.returncode == 0, ".idp/ must be in .gitignore"
    tracked = subprocess.run(
        ["git", "ls-files", ".idp"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == ""


def test_rotation_keeps_the_old_key_published_until_its_tokens_expire(tmp_path: Path) -> None:
    old = load_signing_keys(tmp_path, keep_retired_for=3600)
    token = jwt.encode(
        {"sub": "alice"},
        old.current.as_pem(private=True),
        algorithm="RS256",
        headers={"kid": old.kid},
    )
    rotated = rotate_signing_keys(tmp_path, keep_retired_for=3600)
    assert rotated.kid != old.kid
    assert mode(tmp_path / KEY_FILE) == 0o600
    reloaded = load_signing_keys(tmp_path, keep_retired_for=3600)
    assert reloaded.kid == rotated.kid
    jwks = jwt.PyJWKSet.from_dict(reloaded.jwks())
    assert [k.key_id for k in jwks.keys] == [rotated.kid, old.kid]
    old_public = next(k for k in jwks.keys if k.key_id == old.kid)
    assert jwt.decode(token, old_public.key, algorithms=["RS256"])["sub"] == "alice"
    # once every token it signed has expired, the old key leaves the JWKS
    later = load_signing_keys(tmp_path, keep_retired_for=0)
    assert [k["kid"] for k in later.jwks()["keys"]] == [rotated.kid]


def test_rotate_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from pingapp.devidp.keys import main

    monkeypatch.setenv("IDP_KEY_DIR", str(tmp_path))
    assert main(["keys", "show"]) == 0
    before = [k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]]
    assert main(["keys", "rotate"]) == 0
    after = [k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]]
    assert len(before) == 1
    assert after[1:] == before
    assert after[0] not in before
    assert main(["keys"]) == 2
