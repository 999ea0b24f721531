"""Refresh tokens (rotation, reuse detection) and RFC 7009 revocation."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.idp.flow import login, verify
from tests.idp.serve import AUDIENCE
from tests.support.idp_flow import refresh, revoke


def userinfo_status(idp: dict[str, Any], access_token: str) -> int:
    return httpx2.get(
        idp["metadata"]["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def test_refresh_rotates_and_issues_fresh_tokens(idp: dict[str, Any]) -> None:
    first = login(idp).token
    response = refresh(idp, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    claims = verify(idp, second["access_token"], audience=AUDIENCE, typ="at+jwt")
    assert claims["sub"] == "alice"
    assert "read:messages" in claims["scope"].split()
    id_claims = verify(idp, second["id_token"], audience="pingapp", typ="JWT")
    original = verify(idp, first["id_token"], audience="pingapp", typ="JWT")
    assert id_claims["sub"] == "alice"
    assert id_claims["auth_time"] == original["auth_time"]
    assert "nonce" not in id_claims
    # and the rotated one works in turn
    assert refresh(idp, second["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_grant(idp: dict[str, Any]) -> None:
    first = login(idp).token
    second = refresh(idp, first["refresh_token"]).json()
    reuse = refresh(idp, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # the thief or the client: whoever holds the newest token is out too
    assert refresh(idp, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo_status(idp, second["access_token"]) == 401


def test_refresh_with_narrower_scope_keeps_the_grant(idp: dict[str, Any]) -> None:
    first = login(idp).token
    narrow = refresh(idp, first["refresh_token"], scope="openid offline_access").json()
    assert narrow["scope"] == "openid offline_access"
    wide = refresh(idp, narrow["refresh_token"]).json()
    assert "read:messages" in wide["scope"].split()


def test_refresh_with_wider_scope_is_refused(idp: dict[str, Any]) -> None:
    # dave signs in only here, so he sees the consent page and unticks read:messages
    first = login(idp, user="dave", scopes=["profile", "offline_access"]).token
    assert "read:messages" not in first["scope"].split()
    response = refresh(idp, first["refresh_token"], scope=f"{first['scope']} read:messages")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_refresh_token_is_bound_to_its_client(idp: dict[str, Any]) -> None:
    first = login(idp).token
    assert refresh(idp, first["refresh_token"], client_id="other").json()["error"] == (
        "invalid_grant"
    )


def test_unknown_refresh_token_is_invalid_grant(idp: dict[str, Any]) -> None:
    assert refresh(idp, "not-a-token").json()["error"] == "invalid_grant"


def test_revoking_the_refresh_token_ends_the_grant(idp: dict[str, Any]) -> None:
    token = login(idp).token
    assert revoke(idp, token["refresh_token"], token_type_hint="refresh_token").status_code == 200
    assert refresh(idp, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo_status(idp, token["access_token"]) == 401


def test_revoking_the_access_token(idp: dict[str, Any]) -> None:
    token = login(idp).token
    assert userinfo_status(idp, token["access_token"]) == 200
    assert revoke(idp, token["access_token"]).status_code == 200
    assert userinfo_status(idp, token["access_token"]) == 401
    # the grant itself lives on
    assert refresh(idp, token["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_answers_200(idp: dict[str, Any]) -> None:
    assert revoke(idp, "never-issued").status_code == 200


def test_another_client_cannot_revoke(idp: dict[str, Any]) -> None:
    token = login(idp).token
    assert revoke(idp, token["refresh_token"], client_id="other").status_code == 400
    assert refresh(idp, token["refresh_token"]).status_code == 200


def test_revocation_needs_a_known_client(idp: dict[str, Any]) -> None:
    response = revoke(idp, "whatever", client_id="nobody")
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"
