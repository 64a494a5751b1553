"""A service runs with start-up frozen and young collections every 10,000 allocations."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from intentbus.command.common import GC_YOUNG_THRESHOLD, run


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def _collector_state() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


@pytest.mark.usefixtures("restored_gc")
def test_a_service_runs_with_start_up_frozen_and_fewer_young_collections() -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    assert run(_collector_state()) == ((700, 10, 10), 0)  # a one-shot command: untouched
    threshold, frozen = run(_collector_state(), service=True)
    assert threshold == (GC_YOUNG_THRESHOLD, 10, 10)
    assert frozen > 10_000  # the modules, classes and functions imported so far
