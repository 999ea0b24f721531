"""OpenID Connect Back-Channel Logout 1.0 at the provider: `sid` in ID tokens, and a
signed Logout Token POSTed to each client of the session (at a real receiver, over
HTTP) when the session ends or a grant is revoked; bounded retries when it is down.
"""

from __future__ import annotations

import time
from typing import Any

import httpx2
import jwt
import pytest

from pingapp.devidp.backchannel import LogoutDelivery, LogoutNotice
from tests.idp.flow import Browser, login, rp, verify
from tests.idp.receiver import SLOW_SECONDS
from tests.idp.serve import OTHER_REDIRECT
from tests.support.idp_flow import delivered, for_session, received, refresh, revoke
from tests.support.net import wait_until

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def sid_of(idp: dict[str, Any], id_token: str, client_id: str = "pingapp") -> str:
    return verify(idp, id_token, audience=client_id, typ="JWT")["sid"]


def end_session(idp: dict[str, Any], browser: Browser, id_token: str) -> httpx2.Response:
    return browser.http.get(
        idp["metadata"]["end_session_endpoint"], params={"id_token_hint": id_token}
    )


def check_logout_token(
    idp: dict[str, Any], post: dict[str, Any], *, client_id: str, sid: str, sub: str
) -> dict[str, Any]:
    """Section 2.4 and 2.5, checked with PyJWT against the provider's JWKS."""
    assert post["content_type"].startswith("application/x-www-form-urlencoded")
    assert set(post["form"]) == {"logout_token"}
    token = post["form"]["logout_token"]
    claims = verify(idp, token, audience=client_id, typ="logout+jwt")
    assert jwt.get_unverified_header(token)["kid"]
    assert claims["iss"] == idp["issuer"]
    assert claims["aud"] == client_id
    assert claims["events"] == {EVENT: {}}
    assert claims["sid"] == sid
    assert claims["sub"] == sub
    assert "nonce" not in claims
    assert abs(claims["iat"] - time.time()) < 60
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert len(claims["jti"]) >= 16
    return claims


def test_discovery_advertises_back_channel_logout_with_sessions(bcl_idp: dict[str, Any]) -> None:
    meta = bcl_idp["metadata"]
    assert meta["backchannel_logout_supported"] is True
    assert meta["backchannel_logout_session_supported"] is True
    assert "sid" in meta["claims_supported"]


def test_sid_is_stable_within_a_provider_session_and_new_for_another(
    bcl_idp: dict[str, Any],
) -> None:
    first = login(bcl_idp)
    sid = sid_of(bcl_idp, first.token["id_token"])
    assert len(sid) >= 16
    assert sid != first.browser.http.cookies.get("idp_session")  # not the cookie's value
    # the same browser, another client, no sign-in: the same session
    other = login(bcl_idp, first.browser, client=rp("other", redirect_uri=OTHER_REDIRECT))
    assert sid_of(bcl_idp, other.token["id_token"], "other") == sid
    # the ID token of a refresh carries it too
    again = refresh(bcl_idp, first.token["refresh_token"]).json()
    assert sid_of(bcl_idp, again["id_token"]) == sid
    # signing in again as the same user (step-up) keeps the provider session
    step_up = login(bcl_idp, first.browser, prompt="login")
    assert sid_of(bcl_idp, step_up.token["id_token"]) == sid
    # another browser: another session
    elsewhere = login(bcl_idp)
    assert sid_of(bcl_idp, elsewhere.token["id_token"]) != sid


def test_logout_at_the_provider_posts_a_logout_token_to_each_client_of_the_session(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    first = login(bcl_idp, user="bob")
    login(bcl_idp, first.browser, client=rp("other", redirect_uri=OTHER_REDIRECT))
    sid = sid_of(bcl_idp, first.token["id_token"])
    assert not received(receiver_server, "pingapp", sid)

    response = end_session(bcl_idp, first.browser, first.token["id_token"])
    assert response.status_code == 200
    assert 'id="idp-signed-out"' in response.text

    app_post = delivered(receiver_server, "pingapp", sid)
    other_post = delivered(receiver_server, "other", sid)
    assert len(app_post) == len(other_post) == 1
    mine = check_logout_token(bcl_idp, app_post[0], client_id="pingapp", sid=sid, sub="bob")
    theirs = check_logout_token(bcl_idp, other_post[0], client_id="other", sid=sid, sub="bob")
    assert mine["jti"] != theirs["jti"]
    # a client that got no tokens in this session hears nothing of it
    assert not received(receiver_server, "slow", sid)


def test_logout_answers_at_once_while_a_slow_client_is_told(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    result = login(bcl_idp, client=rp("slow"))
    sid = sid_of(bcl_idp, result.token["id_token"], "slow")
    started = time.monotonic()
    response = end_session(bcl_idp, result.browser, result.token["id_token"])
    assert response.status_code == 200
    # Waiting for the receiver would take SLOW_SECONDS; the answer comes a second sooner.
    assert time.monotonic() - started < SLOW_SECONDS - 1
    delivered(receiver_server, "slow", sid)


def test_a_client_in_the_providers_own_process_is_told_over_http(
    bcl_idp: dict[str, Any],
) -> None:
    """The app and the provider in one backend (one worker): the POST to the app's
    own route is served while the provider's logout has already answered."""
    result = login(bcl_idp, client=rp("self"))
    sid = sid_of(bcl_idp, result.token["id_token"], "self")
    assert end_session(bcl_idp, result.browser, result.token["id_token"]).status_code == 200

    def got() -> list[dict[str, Any]]:
        return for_session(httpx2.get(f"{bcl_idp['base']}/_self").json(), sid)

    posts = wait_until(got, what="a Logout Token at the app's own route", timeout=10, interval=0.05)
    post = posts[0]
    check_logout_token(bcl_idp, post, client_id="self", sid=sid, sub="alice")


def test_a_client_without_a_back_channel_uri_is_not_told(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    result = login(bcl_idp, client=rp("silent"))
    sid = sid_of(bcl_idp, result.token["id_token"], "silent")
    assert end_session(bcl_idp, result.browser, result.token["id_token"]).status_code == 200
    posts = httpx2.get(f"{receiver_server}/_received").json()
    assert all(post["name"] != "silent" for post in posts)
    assert sid


def test_refresh_token_reuse_sends_a_logout_token(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    first = login(bcl_idp)
    sid = sid_of(bcl_idp, first.token["id_token"])
    assert refresh(bcl_idp, first.token["refresh_token"]).status_code == 200
    assert not received(receiver_server, "pingapp", sid)
    assert refresh(bcl_idp, first.token["refresh_token"]).json()["error"] == "invalid_grant"
    posts = delivered(receiver_server, "pingapp", sid)
    check_logout_token(bcl_idp, posts[0], client_id="pingapp", sid=sid, sub="alice")
    # presenting it again revokes nothing new, so no second token
    assert refresh(bcl_idp, first.token["refresh_token"]).status_code == 400
    assert len(received(receiver_server, "pingapp", sid)) == 1


def test_revoking_the_refresh_token_sends_a_logout_token(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    token = login(bcl_idp).token
    sid = sid_of(bcl_idp, token["id_token"])
    assert revoke(bcl_idp, token["refresh_token"]).status_code == 200
    posts = delivered(receiver_server, "pingapp", sid)
    check_logout_token(bcl_idp, posts[0], client_id="pingapp", sid=sid, sub="alice")


def test_another_user_signing_in_ends_the_old_session_for_its_clients(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    first = login(bcl_idp, user="alice")
    sid = sid_of(bcl_idp, first.token["id_token"])
    second = login(bcl_idp, first.browser, user="bob", prompt="login")
    assert sid_of(bcl_idp, second.token["id_token"]) != sid
    posts = delivered(receiver_server, "pingapp", sid)
    check_logout_token(bcl_idp, posts[0], client_id="pingapp", sid=sid, sub="alice")


def test_a_receiver_that_is_down_gets_three_attempts_then_a_logged_failure(
    bcl_idp: dict[str, Any], receiver_server: str
) -> None:
    result = login(bcl_idp, client=rp("down"))
    sid = sid_of(bcl_idp, result.token["id_token"], "down")
    assert end_session(bcl_idp, result.browser, result.token["id_token"]).status_code == 200

    def gave_up() -> list[str]:
        lines = httpx2.get(f"{bcl_idp['base']}/_logs").json()
        return [line for line in lines if "client down" in line]

    lines = wait_until(gave_up, what="the failure logged", timeout=10, interval=0.05)
    assert "failed after 3 attempt(s): HTTP 503" in lines[0]
    posts = received(receiver_server, "down", sid)
    assert len(posts) == 3
    tokens = {post["form"]["logout_token"] for post in posts}
    assert len(tokens) == 1  # the same token each time
    assert all(token not in line for line in lines for token in tokens)  # never logged


async def test_retries_stop_at_the_total_time_with_exponential_backoff(
    receiver_server: str,
) -> None:
    """The delivery's own bounds, in process, against the receiver that is down: a
    fake clock moved by a fake sleep, so the test does not wait out the backoff."""
    now = [0.0]
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    async with httpx2.AsyncClient() as http:
        delivery = LogoutDelivery(
            http=http,
            attempts=10,
            total_timeout=10,
            backoff=1,
            sleep=sleep,
            clock=lambda: now[0],
        )
        notice = LogoutNotice("down", f"{receiver_server}/bcl/down-bounded", "not-a-jwt")
        assert await delivery.deliver(notice) is False
        posts = (await http.get(f"{receiver_server}/_received")).json()
    assert pauses == [1, 2, 4]  # attempts at 0, 1, 3, 7; the next would start at 15 s
    assert sum(post["name"] == "down-bounded" for post in posts) == 4


async def test_a_refused_logout_token_is_not_sent_again(receiver_server: str) -> None:
    """400 is how a client says the token is bad (section 2.8): retrying cannot help."""
    async with httpx2.AsyncClient() as http:
        delivery = LogoutDelivery(http=http, backoff=0)
        notice = LogoutNotice("x", f"{receiver_server}/bcl/refuse-once", "not-a-jwt")
        assert await delivery.deliver(notice) is False
        posts = (await http.get(f"{receiver_server}/_received")).json()
    assert sum(post["name"] == "refuse-once" for post in posts) == 1


async def test_a_redirect_is_neither_followed_nor_retried(receiver_server: str) -> None:
    # even with a client given that would follow redirects
    async with httpx2.AsyncClient(follow_redirects=True) as http:
        delivery = LogoutDelivery(http=http, backoff=0)
        notice = LogoutNotice("x", f"{receiver_server}/bcl/moved-once", "not-a-jwt")
        assert await delivery.deliver(notice) is False
        posts = (await http.get(f"{receiver_server}/_received")).json()
    assert sum(post["name"] == "moved-once" for post in posts) == 1
    assert all(post["name"] != "followed" for post in posts)


async def test_an_unusable_uri_is_a_logged_failure() -> None:
    delivery = LogoutDelivery(backoff=0)
    assert await delivery.deliver(LogoutNotice("x", "not a url", "a-token")) is False
    await delivery.aclose()


def test_sending_from_a_thread_without_a_loop_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    delivery = LogoutDelivery()
    with caplog.at_level("WARNING", logger="pingapp.devidp"):
        delivery.send([LogoutNotice("pingapp", "http://127.0.0.1:9/", "a-token")])
    assert "not sent (no event loop): pingapp" in caplog.text
    assert "a-token" not in caplog.text


@pytest.mark.parametrize("attempts", [0, -1])
def test_delivery_needs_at_least_one_attempt(attempts: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LogoutDelivery(attempts=attempts)
