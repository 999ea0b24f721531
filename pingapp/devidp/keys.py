"""The provider's RSA signing keys: generated once, kept owner-only, rotatable.

Default: `<repo>/.idp/signing-keys.json` (git-ignored), created at first start
with mode 0600 inside a 0700 folder; a file that others can read is refused, as
ssh refuses a private key with loose permissions (docs/security.md item 29).
`IDP_SIGNING_KEY` (a PEM) replaces the file, e.g. for several machines.

Rotation (`python -m pingapp.devidp.keys rotate`) makes a new current key and
keeps the old one in the JWKS until every token it signed has expired.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

from pingapp.settings import ConfigurationError

KEY_FILE = "signing-keys.json"
ALGORITHM = "RS256"


class KeyFileError(ConfigurationError):
    """The key file is unsafe or unreadable; the text says what to do."""


def _with_kid(key: RSAKey) -> RSAKey:
    """The key with `kid` (its RFC 7638 thumbprint), `use` and `alg` set."""
    params: Any = {"kid": key.thumbprint(), "use": "sig", "alg": ALGORITHM}
    return RSAKey.import_key(key.as_dict(private=True), params)


def key_from_pem(pem: str | bytes) -> RSAKey:
    try:
        key = RSAKey.import_key(pem)
    except ValueError:
        msg = "IDP_SIGNING_KEY (or the key file) is not an RSA private key in PEM form"
        raise KeyFileError(msg) from None
    if not key.is_private:
        msg = "IDP_SIGNING_KEY must be an RSA *private* key in PEM form"
        raise KeyFileError(msg)
    return _with_kid(key)


def new_key() -> RSAKey:
    return _with_kid(RSAKey.generate_key(2048))


@dataclass(frozen=True)
class SigningKeys:
    """The key that signs now, and older keys still published for verification."""

    current: RSAKey
    retired: list[RSAKey] = field(default_factory=list)

    @property
    def kid(self) -> str:
        return str(self.current.kid)

    def signing_set(self) -> KeySet:
        """Only the current key, so joserfc signs with it and writes its `kid`."""
        return KeySet([self.current])

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: current key first, then retired ones still in use."""
        keys = [self.current, *self.retired]
        return KeySet(keys).as_dict(private=False)  # type: ignore[arg-type]

    def public_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]


def check_owner_only(path: Path) -> None:
    """Refuse a key file that anyone but its owner may read or write."""
    info = path.stat()
    if stat.S_IMODE(info.st_mode) & 0o077:
        msg = (
            f"{path} holds the development provider's private signing key but is "
            f"readable by others (mode {stat.S_IMODE(info.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
        raise KeyFileError(msg)
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        msg = f"{path} belongs to another user; delete it to have a new key made"
        raise KeyFileError(msg)


def _write_private(path: Path, data: dict[str, Any], *, replace: bool) -> bool:
    """Write `data` to `path` with mode 0600 from the first byte.

    With `replace=False` the file is only created if absent (another worker may
    win the race; returns False then). Written to a temporary file first, so a
    reader never sees half a key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            tmp.replace(path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    check_owner_only(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list) or not data["keys"]:
        msg = f"{path} is not a key file written by pingapp; move it away to have a new one made"
        raise KeyFileError(msg)
    return data


def _entry(key: RSAKey, now: int) -> dict[str, Any]:
    pem = key.as_pem(private=True)
    return {"pem": pem.decode("ascii"), "created": now, "retired": None}


def _keys_from(data: dict[str, Any], keep_retired_for: int, now: int) -> SigningKeys:
    current = [e for e in data["keys"] if e.get("retired") is None]
    if len(current) != 1:
        msg = "the key file must have exactly one current key"
        raise KeyFileError(msg)
    retired = [
        key_from_pem(e["pem"])
        for e in data["keys"]
        if e.get("retired") is not None and e["retired"] + keep_retired_for > now
    ]
    return SigningKeys(key_from_pem(current[0]["pem"]), retired)


def load_signing_keys(
    key_dir: Path, pem: str | None = None, *, keep_retired_for: int = 86_400
) -> SigningKeys:
    """The keys in force: from `pem`, else from `key_dir`, made at first use."""
    if pem:
        return SigningKeys(key_from_pem(pem))
    path = key_dir / KEY_FILE
    now = int(time.time())
    if not path.exists():
        _write_private(path, {"keys": [_entry(new_key(), now)]}, replace=False)
    return _keys_from(_read(path), keep_retired_for, now)


def rotate_signing_keys(key_dir: Path, *, keep_retired_for: int = 86_400) -> SigningKeys:
    """Make a new current key; the old one stays published for `keep_retired_for` s."""
    path = key_dir / KEY_FILE
    now = int(time.time())
    data = _read(path) if path.exists() else {"keys": []}
    entries = [
        e for e in data["keys"] if e.get("retired") is None or e["retired"] + keep_retired_for > now
    ]
    for entry in entries:
        if entry.get("retired") is None:
            entry["retired"] = now
    entries.insert(0, _entry(new_key(), now))
    _write_private(path, {"keys": entries}, replace=True)
    return _keys_from({"keys": entries}, keep_retired_for, now)


def main(argv: list[str]) -> int:
    """`python -m pingapp.devidp.keys rotate|show`."""
    from pingapp.devidp.config import get_idp_settings

    settings = get_idp_settings()
    keep = max(settings.access_token_ttl, settings.id_token_ttl) + 60
    if argv[1:] == ["rotate"]:
        keys = rotate_signing_keys(settings.key_dir, keep_retired_for=keep)
    elif argv[1:] == ["show"]:
        keys = load_signing_keys(settings.key_dir, keep_retired_for=keep)
    else:
        sys.stderr.write("usage: python -m pingapp.devidp.keys rotate|show\n")
        return 2
    sys.stdout.write(json.dumps(keys.jwks(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
