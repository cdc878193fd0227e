"""A started plane freezes what it loaded and spaces its young collections out (services/common/heap.py)."""

from __future__ import annotations

import gc
import weakref

import pytest

from services.common.heap import YOUNG_COLLECTION_EVERY, settle_after_start


@pytest.fixture
def collector():
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    pass


def test_what_the_process_holds_at_start_is_frozen_and_young_collections_come_less_often(collector):
    held = [object(), [1, 2], {"a": []}]  # a few containers the "plane" loaded to start
    garbage = Node()
    garbage.me = garbage  # a cycle start-up left behind
    gone = weakref.ref(garbage)
    del garbage
    middle, old = gc.get_threshold()[1:]
    settle_after_start()
    assert gc.get_freeze_count() >= len(held)
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, middle, old)
    assert gone() is None, "start-up garbage is collected before the freeze, not kept for ever"


def test_cycles_made_after_start_are_still_collected(collector):
    settle_after_start()
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    assert gc.collect() >= 2  # the collector still runs; it only runs less often
