"""A serving worker tunes the cyclic garbage collector once it is up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from gateway.listeners import GC_THRESHOLDS, tune_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_start_up_objects_are_frozen_and_collections_are_rarer(collector_restored: None) -> None:
    gc.unfreeze()
    tune_collector()
    assert gc.get_freeze_count() > 1000  # modules, functions, this test's own objects
    assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > 700
    # Garbage cycles made afterwards are still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
