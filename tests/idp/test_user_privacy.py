"""docs/security.md item 33: passwords shown only for the built-in demo users, and no
endpoint tells which user names exist. Driven over HTTP against the served provider."""

from __future__ import annotations

import re
from typing import Any

import httpx2
import pytest

from pingapp.devidp.config import DEMO_USERS, IdpSettings
from tests.idp.flow import Browser, form_error, parse_page, rp, start


def sign_in_page(idp: dict[str, Any]) -> tuple[Browser, httpx2.Response]:
    browser = Browser(idp["issuer"])
    page, *_ = start(idp, browser, rp())
    assert "signin" in parse_page(page.text).ids
    return browser, page


# -- passwords on the sign-in page ----------------------------------------------------------


def test_custom_users_passwords_are_not_shown(idp: dict[str, Any]) -> None:
    """The test server's `/idp` has IDP_USERS set (alice, bob, carol, dave)."""
    _, page = sign_in_page(idp)
    for name in ("alice", "bob", "carol", "dave"):
        assert f"<code>{name}</code> / <code>{name}</code>" not in page.text
    assert "Demo users" not in page.text
    assert "IDP_USERS" in page.text


def test_built_in_demo_users_are_shown_when_in_force(default_idp: dict[str, Any]) -> None:
    _, page = sign_in_page(default_idp)
    assert "<code>alice</code> / <code>alice</code>" in page.text
    assert "<code>bob</code> / <code>bob</code>" in page.text


@pytest.mark.parametrize(
    ("users", "shown"),
    [
        (list(DEMO_USERS), {"alice": "alice", "bob": "bob"}),
        (["alice:alice"], {}),  # fewer
        (["alice:alice", "bob:bob", "carol:s3cret"], {}),  # more
        (["alice:changed", "bob:bob"], {}),  # a demo name, another password
        (["root:hunter2"], {}),
    ],
)
def test_shown_passwords(users: list[str], shown: dict[str, str]) -> None:
    assert IdpSettings(users=users).shown_passwords() == shown


# -- no endpoint tells which names exist ----------------------------------------------------


def without_form_tokens(html: str) -> str:
    """The page without what differs by design: the form tokens, and the name typed
    (which a refused form shows again, whether or not the user exists)."""
    html = re.sub(r'name="(tx|csrf)" value="[^"]*"', r'name="\1" value=""', html)
    return re.sub(r'(name="username"[^>]*?) value="[^"]*"', r'\1 value=""', html)


def test_wrong_password_and_unknown_user_get_the_same_answer(idp: dict[str, Any]) -> None:
    answers = []
    for user, password in (("alice", "wrong"), ("nobody-here", "wrong"), ("nobody", "alice")):
        browser, page = sign_in_page(idp)
        refused = browser.sign_in(page, user, password)
        assert parse_page(refused.text).ids["username"]["value"] == user
        answers.append(
            (
                refused.status_code,
                form_error(refused),
                without_form_tokens(refused.text),
                "idp_session" in browser.http.cookies,
            )
        )
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][:2] == (401, "Wrong user name or password.")


def test_avatar_is_the_same_kind_of_answer_for_any_name(idp: dict[str, Any]) -> None:
    answers = {}
    for name in ("alice", "carol", "nobody", "zed"):
        response = httpx2.get(f"{idp['issuer']}/avatar/{name}.svg")
        answers[name] = response
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
    header_sets = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k not in {"date", "content-length"}))
        for r in answers.values()
    }
    assert len(header_sets) == 1
    # the picture depends on the name only: an unknown name looks like a known one
    shape = {re.sub(r"hsl\([^)]*\)|>[A-Z?]<", "", r.text) for r in answers.values()}
    assert len(shape) == 1
