"""Back-channel logout at the running app (`make run`, embedded provider).

The test plays the provider's part with the provider's own signing key (the app's
`.idp/` key file, readable by the owner like the server itself): a valid Logout
Token ends the user's sessions and signs out every open tab without a reload; each
malformed one gets 400, never 5xx, and ends nothing (docs/security.md 41).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.app import RunningApp, start_app, stored_sessions
from tests.support.browser import sign_in_at_provider
from tests.support.idp import logout_token
from tests.support.processes import ROOT

USERS = "alice:alice,bob:bob"


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bcl-states")


@pytest.fixture(scope="module")
def app(states_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("bcl"),
        env={"REFLEX_STATES_WORKDIR": str(states_dir), "IDP_USERS": USERS},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def issuer(app: RunningApp) -> str:
    return httpx2.get(app.backend + "/idp/.well-known/openid-configuration").json()["issuer"]


@pytest.fixture(scope="module")
def mint(issuer: str) -> Callable[..., str]:
    """Logout Tokens signed with the embedded provider's current key."""
    return functools.partial(logout_token, issuer, ROOT / ".idp")


def post(app: RunningApp, token: str) -> httpx2.Response:
    return httpx2.post(
        app.backend + "/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )


def signed_in(context: BrowserContext, app: RunningApp, user: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, user)
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    return page


def sessions_of(states_dir: Path, user: str) -> int:
    return len([s for s in stored_sessions(states_dir) if s.claims.get("sub") == user])


def test_bad_logout_tokens_get_400_and_end_nothing(
    app: RunningApp, browser: Browser, states_dir: Path, mint: Callable[..., str], issuer: str
) -> None:
    context = browser.new_context()
    page = signed_in(context, app, "bob")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    replayed = mint(sub="bob", sid="nobody")  # valid, names no session: used once below
    assert post(app, replayed).status_code == 200
    bad = {
        "not a JWT": "garbage",
        "unsigned (alg none)": jwt.encode(
            {"iss": issuer, "aud": "pingapp", "sub": "bob"},
            None,  # pyright: ignore[reportArgumentType] - alg none takes no key
            algorithm="none",
        ),
        "signed by another key": mint(sub="bob", key=stranger),
        "wrong audience": mint(sub="bob", aud="another-client"),
        "wrong issuer": mint(sub="bob", iss="https://evil.example/"),
        "replayed jti": replayed,
        "nonce present": mint(sub="bob", nonce="n-1"),
        "missing events": mint(sub="bob", drop=("events",)),
        "wrong event": mint(sub="bob", events={"https://example.test/other": {}}),
        "neither sid nor sub": mint(),
        "no jti": mint(sub="bob", drop=("jti",)),
        "no iat": mint(sub="bob", drop=("iat",)),
        "expired": mint(sub="bob", exp=int(time.time()) - 3600, iat=int(time.time()) - 3700),
        "iat in the future": mint(sub="bob", iat=int(time.time()) + 3600),
        "an ID token's typ": mint(sub="bob", headers={"typ": "JWT+id"}),
    }
    for name, token in bad.items():
        answer = post(app, token)
        assert answer.status_code == 400, (name, answer.status_code, answer.text)
        assert answer.json()["error"] == "invalid_request", name
    for body in ({}, {"logout_token": ""}, {"other": "x"}):
        assert httpx2.post(app.backend + "/auth/backchannel-logout", data=body).status_code == 400
    not_a_form = httpx2.post(app.backend + "/auth/backchannel-logout", json={"logout_token": "x"})
    assert not_a_form.status_code == 400
    assert httpx2.get(app.backend + "/auth/backchannel-logout").status_code == 405
    # Nothing ended: bob is still signed in, in the store and on the page.
    assert sessions_of(states_dir, "bob") == 1
    page.reload()
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    context.close()


def test_a_logout_token_signs_out_every_tab_of_that_user_without_a_reload(
    app: RunningApp, browser: Browser, states_dir: Path, mint: Callable[..., str]
) -> None:
    alice = browser.new_context()
    first = signed_in(alice, app, "alice")
    first.goto(app.url + "/ping")
    expect(first.locator("#ping-private")).to_be_visible()
    second = alice.new_page()
    second.goto(app.url + "/profile")
    expect(second.locator("#profile-name")).to_have_text("Alice")
    bob = browser.new_context()
    bystander = signed_in(bob, app, "bob")

    token = mint(sub="alice")
    started = time.monotonic()
    assert post(app, token).status_code == 200
    for tab in (first, second):
        expect(tab.locator("#qsLoginBtn")).to_be_visible(timeout=2_000)
    print(f"\nback-channel logout to both tabs signed out: {time.monotonic() - started:.2f} s")
    expect(first.locator("#ping-private")).to_have_count(0)
    assert sessions_of(states_dir, "alice") == 0
    # The same token again: refused, and bob was never touched.
    assert post(app, token).status_code == 400
    bystander.reload()
    expect(bystander.locator("#qsLogoutBtn")).to_be_visible()
    assert sessions_of(states_dir, "bob") >= 1
    alice.close()
    bob.close()


def test_signing_out_at_the_embedded_provider_signs_the_apps_tabs_out(
    app: RunningApp, browser: Browser, states_dir: Path
) -> None:
    """The provider's own logout, in another tab: it POSTs a Logout Token to the app
    (over HTTP, as to any client), which signs out both of the user's tabs."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    authorize: list[str] = []
    page.on(
        "request",
        lambda request: authorize.append(request.url) if "/idp/authorize?" in request.url else None,
    )
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "alice")
    expect(page).to_have_url(app.url + "/")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    # PAR (RFC 9126): the embedded provider advertises it, so the app pushes the
    # request and the browser's URL carries only these two.
    assert sorted(parse_qs(urlsplit(authorize[0]).query)) == ["client_id", "request_uri"]
    second = context.new_page()
    second.goto(app.url + "/ping")
    expect(second.locator("#ping-private")).to_be_visible()
    before = sessions_of(states_dir, "alice")

    provider_tab = context.new_page()
    provider_tab.goto(f"{app.backend.replace('127.0.0.1', 'localhost')}/idp/logout")
    provider_tab.click("#logout-confirm")
    for tab in (page, second):
        expect(tab.locator("#qsLoginBtn")).to_be_visible(timeout=2_000)
    assert sessions_of(states_dir, "alice") == before - 1
    context.close()
