"""The cyclic garbage collector, set for a plane that keeps running.

What a plane allocates on its hot path (requests, records, events) dies by reference counting;
the cyclic collector only looks for cycles, and by default it does so every 700 net allocations
of container objects, and now and then walks every object the process holds (a full collection).
Measured on the order plane under an 8-client SubmitStream and Submit load (16,000 orders, all
resting in memory), the collector took about 0.74 s of CPU, and its six full collections paused
the event loop for 72 ms on average and up to 118 ms: every call in flight waited, which was
the stream's p99. Settled as below, 0.15 s.

So, once a plane has started:
- everything it loaded to start (modules, settings, pools, its recovered book) is frozen
  (`gc.freeze`): it lives as long as the process, and a full collection no longer walks it;
- young collections come every 50,000 allocations instead of 700 (as the in-process backtest
  has done since it was measured there), so the older generations fill and are walked less often.
Cycles are still collected; only less often, and over less. Every pause is a metric
(`CollectorPauses`, quantmesh_gc_pause_seconds by generation), so a regression shows.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

#: Net container allocations between two young collections (Python's default is 700).
YOUNG_COLLECTION_EVERY = 50_000


def settle_after_start() -> None:
    """Freezes what the process holds now and spaces the collections out (see the module docstring)."""
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


class CollectorPauses:
    """Times every collection and hands (generation, seconds) to `observe`: the pause the event loop
    waited through, which a process's metrics show (`quantmesh_gc_pause_seconds`)."""

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self._observe = observe
        self._started = 0.0
        gc.callbacks.append(self._on_collection)

    def _on_collection(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._observe(info["generation"], time.perf_counter() - self._started)

    def stop(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)


__all__ = ["YOUNG_COLLECTION_EVERY", "CollectorPauses", "settle_after_start"]
