"""The provider under test, as granian serves it: `granian --factory tests.idp.serve:build`.

Several providers in one app: `/idp` as the app would mount it, `/fast/idp` with
the shortest lifetimes, for the expiry tests, and `/default/idp` with the clients
and users registered by default (the app's and the API docs'; alice and bob), as
`create_idp` makes them.
`/throttle/idp` has its own store and a clock that `POST /_clock?seconds=N` moves
forward, for the sign-in throttle's tests. Configuration comes from the environment
the fixture sets (port, key folder, optional Redis).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from pingapp.devidp import create_idp, embedded_provider_mounts
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.models import Client
from pingapp.devidp.storage import store_for

APP_REDIRECT = "http://127.0.0.1:3000/callback"
APP_LOGOUT = "http://127.0.0.1:3000/"
OTHER_REDIRECT = "http://127.0.0.1:3999/callback"
AUDIENCE = "urn:pingapp:api"
OTHER_AUDIENCE = "urn:other:api"
SECRET = "test-secret-for-the-confidential-client"

CLIENTS = [
    Client("pingapp", (APP_REDIRECT, "http://localhost:3000/callback"), (APP_LOGOUT,)),
    Client("other", (OTHER_REDIRECT,), ()),
    Client("confidential", (APP_REDIRECT,), (APP_LOGOUT,), secret=SECRET),
]


class FakeClock:
    """A clock that stands still until told to move (the same start in every worker)."""

    def __init__(self, start: float = 1_000_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


THROTTLE_CLOCK = FakeClock()


async def move_clock(request: Request) -> PlainTextResponse:
    THROTTLE_CLOCK.now += float(request.query_params.get("seconds", "0"))
    return PlainTextResponse(str(THROTTLE_CLOCK.now))


def build() -> Starlette:
    base = f"http://127.0.0.1:{os.environ['IDP_TEST_PORT']}"
    key_dir = Path(os.environ["IDP_TEST_KEY_DIR"])
    redis_url = os.environ.get("IDP_TEST_REDIS_URL") or None
    # carol and dave are each used by one test only, so they start with no consent.
    users = ["alice:alice", "bob:bob", "carol:carol", "dave:dave"]
    normal = IdpSettings(users=users, key_dir=key_dir, redis_url=redis_url, access_token_ttl=300)
    fast = IdpSettings(
        users=users, key_dir=key_dir, redis_url=redis_url, code_ttl=1, access_token_ttl=10
    )
    demo = IdpSettings(key_dir=key_dir, redis_url=redis_url, access_token_ttl=300)
    common = {"clients": CLIENTS, "audiences": [AUDIENCE, OTHER_AUDIENCE]}
    return Starlette(
        routes=[
            Route("/_clock", move_clock, methods=["POST"]),
            Mount(
                "/throttle/idp",
                app=create_idp(
                    issuer=f"{base}/throttle/idp",
                    settings=normal,
                    store=store_for(redis_url),
                    clock=THROTTLE_CLOCK,
                    **common,
                ),
            ),
            Mount(
                "/idp",
                app=create_idp(
                    issuer=f"{base}/idp", settings=normal, store=store_for(redis_url), **common
                ),
            ),
            Mount(
                "/default/idp",
                app=create_idp(
                    issuer=f"{base}/default/idp",
                    settings=demo,
                    store=store_for(redis_url),
                    audiences=common["audiences"],
                ),
            ),
            Mount(
                "/fast/idp",
                app=create_idp(
                    issuer=f"{base}/fast/idp", settings=fast, store=store_for(redis_url), **common
                ),
            ),
        ]
    )


async def up(request: Request) -> PlainTextResponse:
    return PlainTextResponse("up")


def build_mounted() -> Starlette:
    """What the app mounts (`embedded_provider_mounts()`), for the environment given:
    AUTH_ISSUER, IDP_ENABLED, REFLEX_DEPLOY_URL (the public URL). `/up` says it runs."""
    return Starlette(routes=[Route("/up", up), *embedded_provider_mounts()])
