"""What the app checks and says when it starts.

`refuse_bad_configuration` runs when the app module is imported, which every run
mode does in the process that Reflex starts first (`reflex run`, `reflex run
--env prod`, `reflex export`, `make run`, `make prod`): a refusal there reaches the
console as its short message and the command exits non-zero. Nothing that can be
checked before serving is left to the backend's lifespan, where a refusal would
end only the backend worker, with a traceback, while the frontend keeps running.

`announce` prints the start-up summary once per server: the backend's lifespan
calls it in every worker, and the first worker of a server process claims a
marker file named after that process; later workers and hot reloads find it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from pingapp.context import AppContext
from pingapp.oidc.errors import LoginError
from pingapp.oidc.session import session_key
from pingapp.routes import CALLBACK, HOME, IDP
from pingapp.settings import ConfigurationError, Settings, check_public_url

logger = logging.getLogger(__name__)

#: The marker files' name, before the server process's id.
MARKER = ".announced-"


def refuse_bad_configuration(
    settings: Settings, *, frontend: str, backend: str, prod: bool
) -> None:
    """Raise `ConfigurationError` (one short message) for what would fail later."""
    check_public_url(frontend, settings, prod=prod)
    own = {url.rstrip("/") + IDP for url in (frontend, backend)}
    if settings.auth_issuer and settings.auth_issuer.rstrip("/") in own:
        msg = (
            f"pingapp: AUTH_ISSUER={settings.auth_issuer} is this app's own {IDP}, "
            "where the embedded development provider runs only while AUTH_ISSUER and "
            "AUTH0_DOMAIN are unset. Remove AUTH_ISSUER to use the embedded provider, or "
            "set it to your provider's issuer."
        )
        raise ConfigurationError(msg)
    # Reads the key file (making it on the first start), or checks SESSION_ENCRYPTION_KEY.
    session_key(settings)


def summary(settings: Settings, *, frontend: str, backend: str, embedded: bool) -> str:
    """The start-up summary: where sign-in happens and what to register there."""
    if settings.uses_embedded_provider:
        provider = (
            f"the embedded development provider at {backend}{IDP} "
            "(not for production; users alice/alice and bob/bob)"
            if embedded
            else "none: the embedded provider is not mounted (see the warning above)"
        )
    else:
        provider = str(settings.issuer)
    audience = (
        settings.auth_audience
        or "none (AUTH_AUDIENCE is empty): the API cannot accept the tokens, so the "
        "private pings will answer 401. Set AUTH_AUDIENCE to your API's identifier."
    )
    lines = [
        f"pingapp: open {frontend}{HOME}",
        f"  sign-in provider:  {provider}",
        f"  client id:         {settings.auth_client_id}",
        f"  API audience:      {audience}",
        "  URIs to register for this client at the provider:",
        f"    redirect (callback) URI:  {frontend}{CALLBACK}",
        f"    post-logout URI:          {frontend}{HOME}",
    ]
    return "\n".join(lines)


def announce(text: str, marker_dir: Path) -> bool:
    """Print `text` to the console once for the server process that started this
    one: the first of its workers prints, later workers and hot reloads do not.
    Whether this call printed."""
    parent = os.getppid()
    marker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for old in marker_dir.glob(MARKER + "*"):  # markers of servers that are gone
        pid = old.name.removeprefix(MARKER)
        if pid.isdigit() and int(pid) != parent and not _alive(int(pid)):
            old.unlink(missing_ok=True)
    try:
        os.close(os.open(marker_dir / f"{MARKER}{parent}", os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return False
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the console is the point
    return True


_checks: set[asyncio.Task[None]] = set()


def check_provider_soon(ctx: AppContext) -> None:
    """In the background, fetch the provider's discovery document and check that it
    offers what the settings ask for (AUTH_USE_PAR=true, AUTH_DPOP=required); warn,
    without stopping the app, when it does not: sign-in fails until it does. (The
    provider may be down or slow at start, so this is a warning, not a refusal.)"""

    async def check() -> None:
        try:
            await ctx.oidc.discovery.probe()  # no failure cooldown: see `probe`
            await ctx.oidc.uses_par()
            await ctx.oidc.new_dpop_key()
        except LoginError as error:
            logger.warning("pingapp: sign-in cannot work yet: %s. %s", error.title, error.detail)

    task = asyncio.get_running_loop().create_task(check())
    _checks.add(task)
    task.add_done_callback(_checks.discard)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
