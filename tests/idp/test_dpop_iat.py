"""SECURITY 49 at the embedded provider, over HTTP, on its own (test-moved) clock: a
DPoP proof's `iat` may be at most 5 s ahead, as at the API (the same verifier)."""

from __future__ import annotations

from typing import Any

from pingapp.dpop import DPoPKey
from tests.support.idp_dpop import (
    challenge,
    clock_now,
    code_for,
    error_of,
    exchange,
    proof,
    userinfo,
)


def test_a_proof_more_than_5_s_ahead_of_the_providers_clock_is_refused(
    clocked_idp: dict[str, Any],
) -> None:
    idp, key = clocked_idp, DPoPKey.generate()
    now = clock_now(idp)
    code, verifier = code_for(idp)
    for ahead in (6, 30):
        refused = exchange(idp, code, verifier, proof(idp, key, now=now + ahead))
        assert error_of(refused) == "invalid_dpop_proof"
    response = exchange(idp, code, verifier, proof(idp, key, now=now + 5))
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    for ahead, accepted in ((30, False), (6, False), (5, True)):
        made = proof(idp, key, "/userinfo", method="GET", access_token=token, now=now + ahead)
        answer = userinfo(idp, "DPoP", token, made)
        if accepted:
            assert answer.status_code == 200, answer.text
        else:
            assert 'error="invalid_dpop_proof"' in challenge(answer)
