"""The provider under test, as granian serves it: `granian --factory tests.idp.serve:build`.

Several providers in one app: `/idp` as the app would mount it, and `/default/idp` with the clients
and users registered by default (the app's and the API docs'; alice and bob), as
`create_idp` makes them.
`/throttle/idp` has its own store and a clock that `POST /_clock?seconds=N` moves
forward, for the sign-in throttle's tests; `/clocked/idp` has another
(`POST /_clock?clock=clocked&seconds=N`), for the expiry of codes and pushed
requests, sign-in times and `max_age`. `/par/idp` requires pushed authorization requests
(IDP_REQUIRE_PAR); `/nonce/idp` requires DPoP nonces (IDP_DPOP_NONCE). `/bcl/idp` has
clients with back-channel logout URIs at the test receiver (`receiver.py`,
IDP_TEST_RECEIVER) and retries with a fast backoff; `GET /_logs` lists what the
provider logged. `/proxied/idp` trusts 127.0.0.2 and 127.0.0.3 as reverse proxies
(TRUSTED_PROXIES) and has a throttle clock of its own (`clock=proxied`).
`/sealed/idp` keeps its records in memory whatever the environment, and
`GET /_store` shows them (how many, and every key and value). Configuration comes
from the environment the fixture sets (port, key folder, optional Redis, the receiver).
"""

from __future__ import annotations

import logging
import os
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from pingapp.devidp import create_idp, embedded_provider_mounts
from pingapp.devidp.backchannel import LogoutDelivery
from pingapp.devidp.config import IdpSettings
from pingapp.devidp.models import Client
from pingapp.devidp.storage import MemoryStore, store_for

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
CLOCKS = {"throttle": THROTTLE_CLOCK, "clocked": FakeClock(), "proxied": FakeClock()}
#: The proxies `/proxied/idp` believes `X-Forwarded-For` from.
TRUSTED_PROXIES = [ip_network("127.0.0.2"), ip_network("127.0.0.3")]
#: `/sealed/idp`'s records, for `GET /_store`.
SEALED_STORE = MemoryStore()


async def move_clock(request: Request) -> PlainTextResponse:
    clock = CLOCKS[request.query_params.get("clock", "throttle")]
    clock.now += float(request.query_params.get("seconds", "0"))
    return PlainTextResponse(str(clock.now))


def bcl_clients(receiver: str, base: str) -> list[Client]:
    """Clients of `/bcl/idp`: `pingapp` and `other` reach the receiver, `down` gets
    503s, `slow` an answer after `receiver.SLOW_SECONDS`, `silent` registered no
    back-channel URI, and `self` is served by this very process (`/_self`), as the app
    is by the provider's."""

    def at(name: str, redirect: str = APP_REDIRECT, *, sid_required: bool = False) -> Client:
        return Client(
            name,
            (redirect,),
            (APP_LOGOUT,),
            backchannel_logout_uri=f"{receiver}/bcl/{name}",
            backchannel_logout_session_required=sid_required,
        )

    return [
        at("pingapp", sid_required=True),
        at("other", OTHER_REDIRECT),
        at("down"),
        at("slow"),
        Client("silent", (APP_REDIRECT,), (APP_LOGOUT,)),
        Client("self", (APP_REDIRECT,), (APP_LOGOUT,), backchannel_logout_uri=f"{base}/_self"),
    ]


SELF_RECEIVED: list[dict[str, Any]] = []


async def self_receiver(request: Request) -> Response:
    """The app's `/auth/backchannel-logout` in the provider's own process."""
    if request.method == "GET":
        return JSONResponse(SELF_RECEIVED)
    async with request.form() as form:
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    SELF_RECEIVED.append({"content_type": request.headers.get("content-type", ""), "form": fields})
    return Response(status_code=200)


class Remember(logging.Handler):
    """Keeps the provider's log lines, for `GET /_logs`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


LOGS = Remember()


async def logs(request: Request) -> JSONResponse:
    return JSONResponse(LOGS.lines)


async def sealed_store(request: Request) -> JSONResponse:
    items = dict(SEALED_STORE._items)  # pyright: ignore[reportPrivateUsage]
    dump = [f"{key} {value}" for key, (_, value) in items.items()]
    return JSONResponse({"size": len(items), "dump": dump})


def build() -> Starlette:
    base = f"http://127.0.0.1:{os.environ['IDP_TEST_PORT']}"
    key_dir = Path(os.environ["IDP_TEST_KEY_DIR"])
    redis_url = os.environ.get("IDP_TEST_REDIS_URL") or None
    # Nothing listens on port 9 (discard) when no receiver was started.
    receiver = os.environ.get("IDP_TEST_RECEIVER") or "http://127.0.0.1:9"
    logging.getLogger("pingapp.devidp").addHandler(LOGS)
    # carol and dave are each used by one test only, so they start with no consent.
    users = ["alice:alice", "bob:bob", "carol:carol", "dave:dave"]
    normal = IdpSettings(users=users, key_dir=key_dir, redis_url=redis_url, access_token_ttl=300)
    demo = IdpSettings(key_dir=key_dir, redis_url=redis_url, access_token_ttl=300)
    par_only = IdpSettings(users=users, key_dir=key_dir, redis_url=redis_url, require_par=True)
    nonces = IdpSettings(users=users, key_dir=key_dir, redis_url=redis_url, dpop_nonce=True)
    common = {"clients": CLIENTS, "audiences": [AUDIENCE, OTHER_AUDIENCE]}
    return Starlette(
        routes=[
            Route("/_clock", move_clock, methods=["POST"]),
            Route("/_logs", logs),
            Route("/_store", sealed_store),
            Route("/_self", self_receiver, methods=["GET", "POST"]),
            Mount(
                "/clocked/idp",
                app=create_idp(
                    issuer=f"{base}/clocked/idp",
                    settings=normal,
                    store=store_for(redis_url),
                    clock=CLOCKS["clocked"],
                    **common,
                ),
            ),
            Mount(
                "/par/idp",
                app=create_idp(
                    issuer=f"{base}/par/idp",
                    settings=par_only,
                    store=store_for(redis_url),
                    **common,
                ),
            ),
            Mount(
                "/nonce/idp",
                app=create_idp(
                    issuer=f"{base}/nonce/idp",
                    settings=nonces,
                    store=store_for(redis_url),
                    **common,
                ),
            ),
            Mount(
                "/bcl/idp",
                app=create_idp(
                    issuer=f"{base}/bcl/idp",
                    settings=normal,
                    store=store_for(redis_url),
                    clients=bcl_clients(receiver, base),
                    audiences=common["audiences"],
                    logout_delivery=LogoutDelivery(backoff=0.01),
                ),
            ),
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
                "/proxied/idp",
                app=create_idp(
                    issuer=f"{base}/proxied/idp",
                    settings=normal,
                    store=store_for(redis_url),
                    clock=CLOCKS["proxied"],
                    trusted_proxies=TRUSTED_PROXIES,
                    **common,
                ),
            ),
            Mount(
                "/sealed/idp",
                app=create_idp(
                    issuer=f"{base}/sealed/idp", settings=normal, store=SEALED_STORE, **common
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
        ]
    )


async def up(request: Request) -> PlainTextResponse:
    return PlainTextResponse("up")


def build_mounted() -> Starlette:
    """What the app mounts (`embedded_provider_mounts()`), for the environment given:
    AUTH_ISSUER, IDP_ENABLED, REFLEX_DEPLOY_URL (the public URL). `/up` says it runs."""
    return Starlette(routes=[Route("/up", up), *embedded_provider_mounts()])
