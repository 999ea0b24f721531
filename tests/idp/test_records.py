"""The provider's typed records: what goes in comes out, and expiry follows the
provider's clock (moved here, never waited for)."""

from __future__ import annotations

from pingapp.devidp import records as r
from pingapp.devidp.models import Subject
from pingapp.devidp.records import BACKSTOP, Records
from pingapp.devidp.storage import MemoryStore


def records_at(start: float = 1_000.0) -> tuple[Records, list[float], MemoryStore]:
    now = [start]
    store = MemoryStore()
    return Records(store, clock=lambda: now[0]), now, store


def test_records_come_back_as_their_types() -> None:
    records, _, _ = records_at()
    subject = Subject("alice", 990, "gid-1", "urn:api", grant_expires=5_000, sid="s1")
    transaction = r.Transaction(
        params=[("client_id", "pingapp"), ("scope", "openid")],
        browser=r.digest("b"),
        client_id="pingapp",
        scopes=["openid"],
        audience=None,
    ).signed_in("alice", 990, "s1")
    records.put(r.TRANSACTIONS, transaction, "tx1", ttl=600)
    records.put(
        r.REFRESH_TOKENS, r.RefreshRecord("gid-1", "pingapp", "openid", subject), "k", ttl=60
    )
    assert records.get(r.TRANSACTIONS, "tx1") == transaction
    assert records.get(r.REFRESH_TOKENS, "k") == r.RefreshRecord(
        "gid-1", "pingapp", "openid", subject
    )


def test_a_record_expires_on_the_clock() -> None:
    records, now, _ = records_at()
    records.put(r.SESSIONS, r.Session("alice", 1_000, "s1"), "cookie", ttl=60)
    now[0] += 59.9
    assert records.get(r.SESSIONS, "cookie") == r.Session("alice", 1_000, "s1")
    now[0] += 0.1
    assert records.get(r.SESSIONS, "cookie") is None
    assert records.take(r.SESSIONS, "cookie") is None


def test_an_expired_record_can_still_be_told_from_a_missing_one() -> None:
    records, now, _ = records_at()
    records.put(r.PUSHED_REQUESTS, r.PushedRequest("pingapp", [("a", "b")]), "h", ttl=60)
    now[0] += 61
    stored = records.read(r.PUSHED_REQUESTS, "h", remove=True)
    assert stored is not None
    assert stored.record.params == [("a", "b")]
    assert records.live(stored) is None
    assert records.read(r.PUSHED_REQUESTS, "h", remove=True) is None


def test_take_is_single_use() -> None:
    records, _, _ = records_at()
    records.put(r.SESSIONS, r.Session("alice", 1_000, "s1"), "k", ttl=600)
    assert records.take(r.SESSIONS, "k") == r.Session("alice", 1_000, "s1")
    assert records.take(r.SESSIONS, "k") is None


def test_a_transaction_of_the_layout_that_kept_raw_values_reads_as_absent() -> None:
    """Before, a transaction held the browser cookie and the form token themselves."""
    records, now, store = records_at()
    old = {"params": [], "bid": "b" * 43, "csrf": "c", "client_id": "pingapp", "scopes": []}
    store.put("tx:old", {**old, "audience": None, r.EXPIRES_AT: now[0] + 600}, 660)
    assert records.get(r.TRANSACTIONS, "old") is None


def test_form_tokens_depend_on_the_browser_and_the_purpose() -> None:
    token = r.form_token("browser-one", "tx", "t1")
    assert token == r.form_token("browser-one", "tx", "t1")
    others = {
        r.form_token("browser-two", "tx", "t1"),
        r.form_token("browser-one", "tx", "t2"),
        r.form_token("browser-one", "logout", "t1"),
        r.form_token("browser-one", "tx\0t1"),
    }
    assert token not in others
    assert len(others) == 4
    assert "browser-one" not in token


def test_keys_are_prefixed_by_kind_and_kept_a_little_past_expiry() -> None:
    records, _, store = records_at()
    records.put(r.NONCES, r.Marker(), "pingapp", "n", ttl=60)
    records.put(r.CONSENTS, r.Consent(["openid"]), "alice", "pingapp", ttl=60)
    assert set(store._items) == {"nonce:pingapp:n", "consent:alice:pingapp"}  # pyright: ignore[reportPrivateUsage]
    assert records.has(r.NONCES, "pingapp", "n")
    assert not records.has(r.NONCES, "other", "n")
    assert BACKSTOP > 0


def test_a_record_of_another_layout_reads_as_absent() -> None:
    """Redis may still hold records an older version wrote: no error, no session."""
    records, _, store = records_at()
    store.put("sess:old", {"user": "alice", "auth_time": 1, "sid": "s"}, 60)
    assert records.get(r.SESSIONS, "old") is None


def test_first_use_is_true_once_until_the_store_forgets() -> None:
    store_now = [0.0]
    records = Records(MemoryStore(clock=lambda: store_now[0]))
    assert records.first_use(r.DPOP_PROOFS, "jkt-jti", ttl=62)
    assert not records.first_use(r.DPOP_PROOFS, "jkt-jti", ttl=62)
    assert records.first_use(r.DPOP_PROOFS, "other", ttl=62)
    store_now[0] += 63
    assert records.first_use(r.DPOP_PROOFS, "jkt-jti", ttl=62)


def test_a_bound_refresh_record_keeps_its_key() -> None:
    records, _, _ = records_at()
    subject = Subject("alice", 990, "gid-1")
    record = r.RefreshRecord("gid-1", "pingapp", "openid", subject, jkt="thumb")
    records.put(r.REFRESH_TOKENS, record, "k", ttl=60)
    found = records.get(r.REFRESH_TOKENS, "k")
    assert found is not None
    assert found.issued("k").jkt == "thumb"
