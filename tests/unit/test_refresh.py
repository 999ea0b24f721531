"""Token refresh as an outcome (`pingapp.oidc.refresh`): every case decided by
plain code, on a vault on disk, a fake provider and a clock the test moves."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from pingapp.oidc.errors import GrantRejected, ProviderUnavailable
from pingapp.oidc.refresh import REFRESH_MARGIN, Outcome, current_token
from pingapp.oidc.session import ServerSession, Vault
from pingapp.oidc.store import DiskStore

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Provider:
    """Answers refresh requests; `error` makes it refuse or be down."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None

    async def refresh(self, refresh_token: str, *, dpop_key: str = "") -> dict[str, Any]:
        self.calls.append(refresh_token)
        await asyncio.sleep(0)  # let concurrent callers queue on the lock
        if self.error:
            raise self.error
        n = len(self.calls) + 1
        return {"access_token": f"access-{n}", "refresh_token": f"refresh-{n}", "expires_in": 300}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(tmp_path: Path, clock: Clock) -> Vault:
    store = DiskStore(tmp_path / "sessions")
    return Vault(store, Fernet.generate_key(), max_age=86_400, clock=clock)


@pytest.fixture
def provider() -> Provider:
    return Provider()


async def stored(vault: Vault, *, expires_in: float, refresh: str = "refresh-1") -> str:
    """A session whose token lives `expires_in` more seconds; its store reference."""
    session_id = await vault.create(
        ServerSession(access_token="access-1", refresh_token=refresh, expires_at=NOW + expires_in)
    )
    return vault.reference(session_id)


async def test_a_token_with_time_left_is_fresh(vault: Vault, provider: Provider, clock: Clock):
    session = await stored(vault, expires_in=REFRESH_MARGIN + 1)
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.FRESH, "access-1")
    assert provider.calls == []


async def test_a_token_about_to_expire_is_refreshed_once_for_concurrent_callers(
    vault: Vault, provider: Provider, clock: Clock
):
    session = await stored(vault, expires_in=REFRESH_MARGIN + 1)
    clock.now += 1  # now inside the margin
    outcomes = await asyncio.gather(
        *(current_token(vault, provider, session, clock=clock) for _ in range(5))
    )
    assert provider.calls == ["refresh-1"]
    assert {o.token for o in outcomes} == {"access-2"}
    assert [o.kind for o in outcomes].count(Outcome.REFRESHED) == 1
    assert outcomes[0].kind is Outcome.REFRESHED
    assert outcomes[0].session is not None
    assert outcomes[0].session.expires_at == clock.now + 300
    again = await vault.load(session)
    assert again is not None
    assert (again.access_token, again.refresh_token) == ("access-2", "refresh-2")


async def test_a_rejected_token_is_refreshed_even_with_time_left(
    vault: Vault, provider: Provider, clock: Clock
):
    session = await stored(vault, expires_in=3600)
    outcome = await current_token(vault, provider, session, rejected="access-1", clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.REFRESHED, "access-2")
    # Rejected again with the old token: someone already renewed it.
    outcome = await current_token(vault, provider, session, rejected="access-1", clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.FRESH, "access-2")
    assert provider.calls == ["refresh-1"]


async def test_without_a_refresh_token_an_expired_session_ends(
    vault: Vault, provider: Provider, clock: Clock
):
    session = await stored(vault, expires_in=10, refresh="")
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.FRESH, "access-1")  # still valid
    clock.now += 11
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token, outcome.ended) == (Outcome.EXPIRED, None, True)
    assert await vault.load(session) is None
    assert provider.calls == []


async def test_without_a_refresh_token_a_rejected_token_gives_none(
    vault: Vault, provider: Provider, clock: Clock
):
    session = await stored(vault, expires_in=3600, refresh="")
    outcome = await current_token(vault, provider, session, rejected="access-1", clock=clock)
    assert (outcome.kind, outcome.token, outcome.ended) == (Outcome.REJECTED, None, False)
    assert await vault.load(session) is not None  # the session stays


async def test_invalid_grant_ends_the_session(vault: Vault, provider: Provider, clock: Clock):
    provider.error = GrantRejected("t", "d", code="invalid_grant")
    session = await stored(vault, expires_in=5)
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token, outcome.ended) == (Outcome.REVOKED, None, True)
    assert await vault.load(session) is None


async def test_with_the_provider_down_the_token_is_used_while_it_lasts(
    vault: Vault, provider: Provider, clock: Clock
):
    provider.error = ProviderUnavailable("t", "d")
    session = await stored(vault, expires_in=5)
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.PROVIDER_DOWN, "access-1")
    clock.now += 6  # expired now
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token, outcome.ended) == (Outcome.PROVIDER_DOWN, None, False)
    outcome = await current_token(vault, provider, session, rejected="access-1", clock=clock)
    assert (outcome.kind, outcome.token) == (Outcome.PROVIDER_DOWN, None)
    assert await vault.load(session) is not None  # kept for when the provider is back


@pytest.mark.parametrize("session", ["", "0" * 64])
async def test_no_session_gives_no_token(
    vault: Vault, provider: Provider, clock: Clock, session: str
):
    outcome = await current_token(vault, provider, session, clock=clock)
    assert (outcome.kind, outcome.token, outcome.ended) == (Outcome.NO_SESSION, None, True)
    assert await vault.store.count() == 0
