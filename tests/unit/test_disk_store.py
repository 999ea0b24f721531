"""The disk store keeps itself small (docs/security.md 38, 47): expired records that
nobody reads again are swept at most once per `purge_interval` (on a write), and
at most `max_records` live records are held (`StoreFull` beyond that).

Time is an injected clock that the tests move by hand: nothing here sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pingapp.oidc.store import MAX_RECORDS, PURGE_INTERVAL, DiskStore, StoreFull
from tests.support.clock import FakeClock

INTERVAL = 60.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


def on_disk(folder: Path) -> int:
    """Record files in the folder, live or not (no read, so no clean-up)."""
    return sum(1 for path in folder.iterdir() if not path.name.startswith("."))


def test_the_defaults_bound_the_store() -> None:
    assert issubclass(StoreFull, OSError)  # the routes answer an OSError with 503
    assert 0 < PURGE_INTERVAL <= 600
    assert 0 < MAX_RECORDS <= 1_000_000


async def test_expired_records_nobody_reads_go_at_the_next_paced_sweep(
    folder: Path, clock: FakeClock
) -> None:
    store = DiskStore(folder, clock=clock.time, purge_interval=INTERVAL)
    for n in range(5):
        await store.put(f"forgotten-{n}", b"x", 10)  # never read again
    await store.put("kept", b"live", 1000)
    assert on_disk(folder) == 6
    clock.advance(11)  # the five have expired; nobody looks at them
    await store.put("early", b"y", 1000)
    assert on_disk(folder) == 7  # too soon for a sweep: they are still there
    clock.advance(INTERVAL - 11 - 1)
    await store.get("kept")
    await store.delete("absent")
    assert on_disk(folder) == 7  # reads and deletes do not sweep
    await store.put("still-early", b"z", 1000)
    assert on_disk(folder) == 8  # one second before the interval is up
    clock.advance(1)
    await store.put("on-time", b"w", 1000)
    assert on_disk(folder) == 4  # swept: kept, early, still-early, on-time
    assert await store.get("kept") == b"live"
    assert await store.get("forgotten-0") is None
    assert await store.count() == 4


async def test_sweeps_are_at_most_one_per_interval(folder: Path, clock: FakeClock) -> None:
    store = DiskStore(folder, clock=clock.time, purge_interval=INTERVAL)
    await store.put("first", b"1", 1000)  # the first write sweeps (nothing to do)
    await store.put("short", b"2", 5)
    clock.advance(6)
    for n in range(10):  # many writes within one interval: no sweep among them
        await store.put(f"k{n}", b"v", 1000)
    assert on_disk(folder) == 12
    clock.advance(INTERVAL)
    await store.put("next", b"v", 1000)
    assert on_disk(folder) == 12  # "short" went, "next" came
    assert await store.get("short") is None


async def test_count_is_of_live_records_and_sweeps(folder: Path, clock: FakeClock) -> None:
    store = DiskStore(folder, clock=clock.time, purge_interval=INTERVAL)
    assert await store.count() == 0
    await store.put("a", b"1", 10)
    await store.put("b", b"2", 100)
    await store.put("b", b"3", 100)  # a rewrite is still one record
    assert await store.count() == 2
    clock.advance(10)  # "a" ends now
    assert on_disk(folder) == 2
    assert await store.count() == 1
    assert on_disk(folder) == 1
    assert await store.take("b") == b"3"
    assert await store.count() == 0


async def test_the_cap_refuses_a_new_record(folder: Path, clock: FakeClock) -> None:
    store = DiskStore(folder, clock=clock.time, max_records=3, purge_interval=INTERVAL)
    for key in ("a", "b", "c"):
        await store.put(key, key.encode(), 100)
    with pytest.raises(StoreFull):
        await store.put("d", b"d", 100)
    with pytest.raises(StoreFull):
        await store.put_new("d", b"d", 100)
    assert await store.get("d") is None
    assert on_disk(folder) == 3
    assert await store.count() == 3
    # A record that exists may be written again: nothing new is held.
    await store.put("a", b"a2", 100)
    assert await store.get("a") == b"a2"
    assert not await store.put_new("b", b"b2", 100)  # taken: refused as such, not full
    assert await store.count() == 3


async def test_a_deleted_or_taken_record_frees_room(folder: Path, clock: FakeClock) -> None:
    store = DiskStore(folder, clock=clock.time, max_records=2, purge_interval=INTERVAL)
    await store.put("a", b"a", 100)
    await store.put("b", b"b", 100)
    with pytest.raises(StoreFull):
        await store.put("c", b"c", 100)
    await store.delete("a")
    await store.put("c", b"c", 100)
    with pytest.raises(StoreFull):
        await store.put("d", b"d", 100)
    assert await store.take("b") == b"b"
    assert await store.put_new("d", b"d", 100)
    assert await store.count() == 2
    # Deleting what is not there frees nothing.
    await store.delete("absent")
    await store.delete("a")
    with pytest.raises(StoreFull):
        await store.put("e", b"e", 100)


async def test_a_full_store_refuses_until_a_sweep_frees_room(
    folder: Path, clock: FakeClock
) -> None:
    """Refusing costs no scan: a flood of writes into a full store must not each read
    the whole folder. The next paced sweep makes room."""
    store = DiskStore(folder, clock=clock.time, max_records=2, purge_interval=INTERVAL)
    await store.put("short", b"s", 5)
    await store.put("long", b"l", 1000)
    with pytest.raises(StoreFull):
        await store.put("new", b"n", 100)
    clock.advance(6)  # "short" expired, but no sweep is due yet
    with pytest.raises(StoreFull):
        await store.put("new", b"n", 100)
    clock.advance(INTERVAL)
    await store.put("new", b"n", 100)  # the sweep, now due, removed "short"
    assert await store.get("new") == b"n"
    assert await store.get("long") == b"l"
    assert on_disk(folder) == 2
    with pytest.raises(StoreFull):
        await store.put("more", b"m", 100)


async def test_an_expired_record_read_again_is_no_longer_counted(
    folder: Path, clock: FakeClock
) -> None:
    store = DiskStore(folder, clock=clock.time, max_records=1, purge_interval=INTERVAL)
    await store.put("a", b"a", 5)
    clock.advance(6)
    assert await store.get("a") is None  # removed as it is read
    assert on_disk(folder) == 0
    await store.put("b", b"b", 100)
    with pytest.raises(StoreFull):
        await store.put("c", b"c", 100)


async def test_the_cap_counts_records_already_in_the_folder(folder: Path, clock: FakeClock) -> None:
    """A restarted backend finds the records its predecessor left and counts them."""
    before = DiskStore(folder, clock=clock.time, max_records=2, purge_interval=INTERVAL)
    await before.put("a", b"a", 100)
    await before.put("b", b"b", 100)
    after = DiskStore(folder, clock=clock.time, max_records=2, purge_interval=INTERVAL)
    with pytest.raises(StoreFull):
        await after.put("c", b"c", 100)
    assert await after.get("a") == b"a"
