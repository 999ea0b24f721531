"""DPoP end to end (RFC 9449) against the app started as a user starts it (`make
run`) and its embedded provider: the sign-in binds the access token to the session's
key, the pings carry proofs, the token inspector shows the binding; and the token,
stolen from the server-side session store, is useless at the API without a fresh
proof by that key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, expect

from pingapp.dpop import DPoPKey, make_proof
from pingapp.oidc.session import ServerSession
from pingapp.web.challenges import challenge_params
from tests.support.app import PRIVATE_MESSAGE, RunningApp, start_app, wait_for_sessions
from tests.support.browser import sign_in_at_provider


@pytest.fixture(scope="module")
def states_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dpop-states")


@pytest.fixture(scope="module")
def app(states_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        "run",
        tmp_path_factory.mktemp("dpop"),
        env={"REFLEX_STATES_WORKDIR": str(states_dir), "IDP_USERS": "alice:alice"},
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def session(app: RunningApp, states_dir: Path, browser: Browser) -> Iterator[ServerSession]:
    """Alice signs in; her pings and the inspector are checked; then her server-side
    session, read from the store as an attacker with the server's files would."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(app.url + "/ping")
    page.click("#qsLoginBtn")
    sign_in_at_provider(page, "alice")
    expect(page.locator("#qsLogoutBtn")).to_be_visible()
    message = page.locator("#ping-message")
    page.click("#ping-private")
    expect(message).to_contain_text(PRIVATE_MESSAGE)
    expect(page.locator("#ping-timing")).to_contain_text("HTTP 200")
    page.click("#ping-scoped")
    expect(message).to_contain_text("have a scope of read:messages")
    expect(page.locator("#ping-timing")).to_contain_text("HTTP 200")
    [stored] = wait_for_sessions(states_dir, 1)
    key = DPoPKey.from_json(stored.dpop_key)
    assert stored.dpop_jkt == key.jkt  # the provider bound the token (token_type DPoP)
    binding = page.locator("#token-binding")
    expect(binding).to_contain_text("DPoP-bound")
    expect(page.locator("#token-jkt")).to_have_text(key.jkt)
    expect(page.locator("#token-claims")).to_contain_text(f'"jkt": "{key.jkt}"')
    # The key never reaches the page.
    assert str(key.private_jwk()["d"]) not in page.content()
    context.close()
    yield stored


def api_url(app: RunningApp, path: str) -> str:
    """The URL of `path` under the API as the app calls it (Reflex's api_url): what
    a proof's `htu` must name."""
    port = app.backend.rsplit(":", 1)[1]
    return f"http://localhost:{port}/api{path}"


def call(app: RunningApp, token: str, *, scheme: str = "DPoP", proof: str | None = None):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    return httpx2.get(app.backend + "/api/private", headers=headers, timeout=10)


def refused(response: httpx2.Response, scheme: str = "dpop") -> dict[str, str]:
    """Check a 401 whose challenges name DPoP; the `scheme` challenge's parameters."""
    assert response.status_code == 401, response.text
    assert "DPoP" in response.headers.get("WWW-Authenticate", "")
    assert challenge_params(response, "dpop").get("algs")
    return challenge_params(response, scheme)


def test_pings_are_dpop_bound_and_shown(session: ServerSession) -> None:
    """Signed in, pinged and inspected by the `session` fixture."""
    assert session.dpop_jkt


def test_the_stolen_token_as_bearer_is_refused(app: RunningApp, session: ServerSession) -> None:
    assert refused(call(app, session.access_token, scheme="Bearer"), "bearer")["error"] == (
        "invalid_token"
    )


def test_a_proof_for_another_method_or_url_is_refused(
    app: RunningApp, session: ServerSession
) -> None:
    key, token = DPoPKey.from_json(session.dpop_key), session.access_token
    for method, url in (("POST", api_url(app, "/private")), ("GET", api_url(app, "/public"))):
        proof = make_proof(key, method, url, access_token=token)
        assert refused(call(app, token, proof=proof))["error"] == "invalid_dpop_proof"


def test_a_replayed_proof_is_refused(app: RunningApp, session: ServerSession) -> None:
    key, token = DPoPKey.from_json(session.dpop_key), session.access_token
    proof = make_proof(key, "GET", api_url(app, "/private"), access_token=token)
    assert call(app, token, proof=proof).status_code == 200
    assert refused(call(app, token, proof=proof))["error"] == "invalid_dpop_proof"


def test_another_keys_proof_is_refused(app: RunningApp, session: ServerSession) -> None:
    other = DPoPKey.generate()
    proof = make_proof(other, "GET", api_url(app, "/private"), access_token=session.access_token)
    assert refused(call(app, session.access_token, proof=proof))["error"] == ("invalid_dpop_proof")


def test_a_fresh_proof_by_the_sessions_key_is_accepted(
    app: RunningApp, session: ServerSession
) -> None:
    key, token = DPoPKey.from_json(session.dpop_key), session.access_token
    proof = make_proof(key, "GET", api_url(app, "/private"), access_token=token)
    response = call(app, token, proof=proof)
    assert response.status_code == 200, response.headers.get("WWW-Authenticate")
    assert PRIVATE_MESSAGE in response.json()["message"]
