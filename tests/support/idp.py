"""The embedded provider's test apps (tests/idp/serve.py) under granian on a free port."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2
import jwt

from pingapp.devidp.keys import load_signing_keys
from pingapp.oidc.logout_token import BACKCHANNEL_LOGOUT_EVENT
from tests.support.net import NotUp, answers, free_port, wait_until
from tests.support.processes import ROOT, granian_command, stop_process_group


def serve(
    key_dir: Path,
    *,
    workers: int = 1,
    redis_url: str = "",
    factory: str = "tests.idp.serve:build",
    health: str = "/idp/.well-known/openid-configuration",
    env: dict[str, str] | None = None,
    stderr: Any = None,
) -> tuple[str, subprocess.Popen]:
    """Serve `factory` on 127.0.0.1; `env` adds to (or, with "", unsets in) the environment."""
    port = free_port()
    environ = {
        **os.environ,
        "IDP_TEST_PORT": str(port),
        "IDP_TEST_KEY_DIR": str(key_dir),
        "IDP_TEST_REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }
    for name, value in (env or {}).items():
        if value:
            environ[name] = value
        else:
            environ.pop(name, None)
    process = subprocess.Popen(
        granian_command(factory, port, workers=workers),
        cwd=ROOT,
        env=environ,
        stderr=stderr,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: answers(base + health, timeout=1),
            what=f"{factory} at {base}",
            timeout=20,
            alive=lambda: process.poll() is None,
        )
    except NotUp:
        stop(process)
        raise
    return base, process


def stop(process: subprocess.Popen) -> None:
    stop_process_group(process, timeout=10)


def describe(base: str, path: str = "/idp") -> dict[str, Any]:
    """The provider at `base` + `path`: its base, issuer and discovery document."""
    issuer = f"{base}{path}"
    metadata = httpx2.get(f"{issuer}/.well-known/openid-configuration").json()
    return {"base": base, "issuer": issuer, "metadata": metadata}


def logout_token(
    issuer: str,
    key_dir: Path,
    *,
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    key: Any = None,
    **claims: Any,
) -> str:
    """A back-channel Logout Token for the app's client, signed with the current key
    of the embedded provider whose keys are in `key_dir` (the provider's part), or
    with `key`; `claims` and `headers` add or replace, `drop` removes claims."""
    keys = load_signing_keys(key_dir)
    now = int(time.time())
    body = {
        "iss": issuer,
        "aud": "pingapp",
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_hex(16),
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **claims,
    }
    for name in drop:
        body.pop(name, None)
    header = {"kid": keys.kid, "typ": "logout+jwt", **(headers or {})}
    return jwt.encode(body, key or keys.current.as_pem(private=True), "RS256", headers=header)
