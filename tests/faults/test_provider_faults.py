"""The sign-in provider down or slow during login, refresh and logout, and its JWKS
down or slow for the API: one `make run` app with HTTP_TIMEOUT=2 whose AUTH_ISSUER
is the embedded provider run on its own (tests/faults/provider.py). *Down* is that
process stopped (connections refused); *slow* is its fault switch holding
requests to one path for longer than HTTP_TIMEOUT.

Its access tokens live 25 s, under the app's 30 s refresh margin: every secured
ping refreshes first, so a ping exercises the refresh path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from playwright.sync_api import Page, expect

from pingapp.dpop import DPoPKey, make_proof
from tests.faults.provider import AUDIENCE
from tests.support.app import (
    PRIVATE_MESSAGE,
    PUBLIC_MESSAGE,
    RunningApp,
    start_app,
    stored_sessions,
)
from tests.support.browser import log_out, sign_in_at_provider
from tests.support.faults import APP_ENV, HTTP_TIMEOUT, SLACK, SLOW, Provider

WAIT_MS = (HTTP_TIMEOUT + SLACK + 5) * 1000


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("provider-states")


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """Not started: the app comes first (its address is the redirect URI)."""
    made = Provider(tmp_path_factory.mktemp("provider"))
    yield made
    made.stop()


@pytest.fixture(scope="module")
def app(
    provider: Provider, states_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("provider-faults"),
        env={
            **APP_ENV,
            "AUTH_ISSUER": provider.issuer,
            "REFLEX_STATES_WORKDIR": str(states_dir),
        },
    )
    provider.app_urls = [running.url, running.url.replace("localhost", "127.0.0.1")]
    yield running
    running.stop()


@pytest.fixture
def up(app: RunningApp, provider: Provider) -> Provider:
    """The provider running, with no fault set."""
    if provider.process is None or provider.process.poll() is not None:
        provider.start()
    provider.slow("/", 0)
    provider.token_lifetime(None)
    for path in ("/idp/.well-known", "/idp/token", "/idp/revoke", "/idp/logout"):
        provider.slow(path, 0)
    return provider


def timed_error(page: Page, title: str) -> float:
    """Seconds from pressing Log In until #auth-error-title reads `title` (the login
    step's page says it, with Try again and a way back)."""
    started = time.perf_counter()
    page.click("#qsLoginBtn")
    expect(page.locator("#auth-error-title")).to_have_text(title, timeout=WAIT_MS)
    return time.perf_counter() - started


def keeps_serving(page: Page) -> None:
    """From the login step's error page back to the app (or on the same page): no
    spinner left, the public ping works."""
    if page.locator("#back-home").count():
        expect(page.locator("#try-again")).to_be_visible()
        page.click("#back-home")
    expect(page.locator("#qsLoginBtn")).to_be_enabled()
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/", 3)[2] + "/ping")
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)


def tokens_on_disk(states_dir: Path) -> set[str]:
    return {session.access_token for session in stored_sessions(states_dir)}


def sign_in(page: Page, app: RunningApp, states_dir: Path) -> str:
    """Sign in on the ping page; the new session's access token, read from disk."""
    before = tokens_on_disk(states_dir)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page)
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    deadline = time.monotonic() + 10
    while not (new := tokens_on_disk(states_dir) - before):
        assert time.monotonic() < deadline, "no new session on disk"
        time.sleep(0.1)
    [token] = new
    return token


def ping(page: Page, expected: str) -> float:
    """Seconds a private ping takes to show `expected` (after a public ping, so the
    message seen is a new one)."""
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    started = time.perf_counter()
    page.click("#ping-private")
    expect(page.locator("#ping-message")).to_contain_text(expected, timeout=WAIT_MS)
    return time.perf_counter() - started


def wait_until_ended(states_dir: Path, token: str, seconds: float = 10) -> None:
    """Until no active session on disk holds `token` (disk writes are debounced)."""
    deadline = time.monotonic() + seconds
    while token in [session.access_token for session in stored_sessions(states_dir)]:
        assert time.monotonic() < deadline, "the session outlived the logout"
        time.sleep(0.1)


def foreign_token(provider: Provider) -> str:
    """A well-formed access token for this issuer and audience, signed by a key the
    provider never published (a kid nobody knows)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": AUDIENCE,
        "sub": "mallory",
        "client_id": "pingapp",
        "scope": "read:messages",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_hex(8),
    }
    headers = {"kid": "unknown-" + secrets.token_hex(4), "typ": "at+jwt"}
    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def dpop_key_of(states_dir: Path, token: str) -> DPoPKey | None:
    """The key the session holding `token` binds it to (AUTH_DPOP=auto), if any."""
    [session] = [s for s in stored_sessions(states_dir) if s.access_token == token]
    return DPoPKey.from_json(session.dpop_key) if session.dpop_key else None


def call_api(app: RunningApp, token: str, key: DPoPKey | None = None) -> tuple[int, float]:
    """`/api/private` with `token`, as the app sends it: with a fresh DPoP proof by
    `key` (naming the API's URL as the app calls it) when the token is bound."""
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        port = app.backend.rsplit(":", 1)[1]
        htu = f"http://localhost:{port}/api/private"
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(key, "GET", htu, access_token=token),
        }
    started = time.perf_counter()
    answer = httpx2.get(app.backend + "/api/private", headers=headers, timeout=30)
    return answer.status_code, time.perf_counter() - started


# --- login ----------------------------------------------------------------------------


def test_login_with_the_provider_down_says_so_at_once(app: RunningApp, page: Page) -> None:
    # The provider has not been started yet: nothing listens at AUTH_ISSUER.
    page.goto(app.url + "/")
    took = timed_error(page, "The sign-in provider cannot be reached")
    expect(page.locator("#auth-error-detail")).to_contain_text("AUTH_ISSUER")
    assert took < SLACK, took
    keeps_serving(page)


def test_backchannel_logout_without_the_providers_metadata_is_503(
    app: RunningApp, provider: Provider
) -> None:
    """docs/security.md 48: the provider not started yet, so its keys cannot be had: a
    Logout Token cannot be checked now, which is 503 with Retry-After (the provider
    retries), never 400 (which tells it to give up)."""
    assert provider.refused()
    token = jwt.encode(
        {"iss": provider.issuer, "aud": "pingapp", "iat": int(time.time()), "jti": "j1"},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "k1", "typ": "logout+jwt"},
    )
    answer = httpx2.post(app.backend + "/auth/backchannel-logout", data={"logout_token": token})
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) > 0
    assert answer.headers["cache-control"] == "no-store"


def test_login_with_the_provider_slow_times_out(up: Provider, app: RunningApp, page: Page) -> None:
    up.slow("/idp/.well-known", SLOW)
    page.goto(app.url + "/")
    took = timed_error(page, "The sign-in provider is too slow")
    assert HTTP_TIMEOUT - 0.1 < took < HTTP_TIMEOUT + SLACK, took
    keeps_serving(page)


def test_a_slow_token_endpoint_at_the_callback_times_out(
    up: Provider, app: RunningApp, page: Page
) -> None:
    page.goto(app.url + "/")
    page.click("#qsLoginBtn")
    page.wait_for_selector("#username")
    up.slow("/idp/token", SLOW)
    started = time.perf_counter()
    sign_in_at_provider(page)
    expect(page.locator("#auth-error-title")).to_have_text(
        "The sign-in provider is too slow", timeout=WAIT_MS
    )
    assert time.perf_counter() - started < HTTP_TIMEOUT + SLACK + 2  # + the provider's forms
    expect(page.locator("#callback-pending")).to_have_count(0)
    keeps_serving(page)


# --- refresh, and the JWKS for the API --------------------------------------------------


def test_refresh_and_jwks_with_the_provider_slow_then_down(
    up: Provider, app: RunningApp, page: Page, states_dir: Path
) -> None:
    """Each secured ping refreshes first (25 s tokens). A slow token endpoint costs
    the ping at most HTTP_TIMEOUT and the still-valid token is used; a stopped
    provider costs nothing. The API keeps accepting the token through its cached
    keys while the JWKS is slow or down, and refuses an unknown key with a 401
    within its fetch budget (min(HTTP_TIMEOUT, 5 s)). A provider that comes back
    without its records refuses the refresh token: the user is signed out cleanly."""
    known = sign_in(page, app, states_dir)
    key = dpop_key_of(states_dir, known)
    assert ping(page, PRIVATE_MESSAGE) < SLACK  # the API has fetched the keys now

    up.slow("/idp/token", SLOW)
    took = ping(page, PRIVATE_MESSAGE)
    assert HTTP_TIMEOUT - 0.1 < took < HTTP_TIMEOUT + SLACK, took

    up.slow("/idp/.well-known", SLOW)
    status, took = call_api(app, known, key)
    assert (status, took < 1) == (200, True), took
    status, took = call_api(app, foreign_token(up))
    assert status == 401
    assert took < HTTP_TIMEOUT + 1, took

    up.stop()
    took = ping(page, PRIVATE_MESSAGE)
    assert took < SLACK, took
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    status, took = call_api(app, known, key)
    assert (status, took < 1) == (200, True), took
    status, took = call_api(app, foreign_token(up))
    assert (status, took < 1) == (401, True), took

    # Back up with its records gone (they were in its memory): the refresh token is
    # unknown now, `invalid_grant` signs the user out cleanly, with a message.
    up.start()
    page.click("#ping-private")
    expect(page.locator("#auth-error-title")).to_have_text(
        "Your session has ended", timeout=WAIT_MS
    )
    expect(page.locator("#ping-message")).to_contain_text("Sign in first")
    expect(page.locator("#qsLoginBtn")).to_be_visible()


# --- logout ----------------------------------------------------------------------------


def test_logout_with_the_revocation_endpoint_slow_ends_the_session_within_the_timeout(
    up: Provider, app: RunningApp, page: Page, states_dir: Path
) -> None:
    token = sign_in(page, app, states_dir)
    up.slow("/idp/revoke", SLOW)
    started = time.perf_counter()
    log_out(page)
    # Through the provider's end-session endpoint (which answers) back home.
    page.wait_for_url(app.url + "/", timeout=WAIT_MS)
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    assert time.perf_counter() - started < HTTP_TIMEOUT + SLACK
    wait_until_ended(states_dir, token)
    keeps_serving(page)


def test_logout_with_the_provider_slow_stays_in_the_app_and_says_so(
    up: Provider, app: RunningApp, page: Page, states_dir: Path
) -> None:
    """Every provider endpoint slow: the revocation and then the probe of the
    end-session endpoint each give up after HTTP_TIMEOUT, one after the other,
    so the logout takes up to twice HTTP_TIMEOUT (the discovery is cached)."""
    token = sign_in(page, app, states_dir)
    up.slow("/idp/revoke", SLOW)
    up.slow("/idp/logout", SLOW)
    started = time.perf_counter()
    page.click("#qsLogoutBtn")
    expect(page.locator("#auth-error-title")).to_have_text(
        "Signed out of pingapp only", timeout=WAIT_MS + HTTP_TIMEOUT * 1000
    )
    took = time.perf_counter() - started
    assert took < 2 * HTTP_TIMEOUT + SLACK, took
    assert page.url.startswith(app.url), page.url
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    wait_until_ended(states_dir, token)
    keeps_serving(page)


def test_logout_with_the_provider_down_stays_in_the_app_and_says_so(
    up: Provider, app: RunningApp, page: Page, states_dir: Path
) -> None:
    """The session ends here, the browser is not sent to the dead provider's
    end-session URL (Chromium's error page, no way back), and the message says
    the provider's own session may still be open."""
    token = sign_in(page, app, states_dir)
    up.stop()
    started = time.perf_counter()
    page.click("#qsLogoutBtn")
    expect(page.locator("#auth-error-title")).to_have_text(
        "Signed out of pingapp only", timeout=WAIT_MS
    )
    expect(page.locator("#auth-error-detail")).to_contain_text("could not be reached")
    assert time.perf_counter() - started < SLACK
    assert page.url.startswith(app.url), page.url
    expect(page.locator("#qsLoginBtn")).to_be_visible()
    wait_until_ended(states_dir, token, HTTP_TIMEOUT + SLACK)
    page.goto(app.url + "/")
    expect(page.locator("#home-status")).to_contain_text("You are not logged in!")
    keeps_serving(page)


def test_provider_down_when_the_token_has_expired_says_the_provider_is_down(
    up: Provider, app: RunningApp, page: Page, states_dir: Path
) -> None:
    """The worst refresh case: the access token has expired and the provider is
    down, so no token can be had. The ping answers at once; what it should say is
    that the provider cannot be reached. (The provider says the tokens it issues
    expired a minute ago: the app holds them as expired without a wait.)"""
    up.token_lifetime(-60)
    sign_in(page, app, states_dir)
    up.stop()
    page.click("#ping-public")
    expect(page.locator("#ping-message")).to_contain_text(PUBLIC_MESSAGE)
    answer = page.locator("#ping-answer")
    answers = answer.get_attribute("data-answer")
    started = time.perf_counter()
    page.click("#ping-private")
    message = page.locator("#ping-message")
    expect(answer).not_to_have_attribute("data-answer", answers or "", timeout=WAIT_MS)
    assert time.perf_counter() - started < SLACK
    expect(page.locator("#ping-loading")).to_have_count(0)
    expect(message).to_contain_text("provider", timeout=1000)
    expect(message).not_to_contain_text("No access token")
