"""Fixtures for the fault tests (the set-ups themselves are in tests/support/faults.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faults import Gate


@pytest.fixture(scope="module")
def gate() -> Iterator[Gate]:
    running = Gate()
    yield running
    running.close()
