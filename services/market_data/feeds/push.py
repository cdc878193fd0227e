"""The push feed: ticks published to the plane over MarketData.PublishTicks.

A backtest driver or an outside feed gateway owns the timeline, so the plane runs no feed
task, no pacing and no wall-clock keep-time: candles close only on ticks, as in the
in-process backtest. `ticks()` exists only to satisfy the `Feed` protocol and yields nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from services.market_data.feeds.base import FeedTick


class PushFeed:
    name = "push"

    def __init__(self, instruments: Iterable[str]) -> None:
        self.instruments = tuple(instruments)

    async def ticks(self) -> AsyncIterator[FeedTick]:
        return
        yield  # an async generator that ends at once: pushed ticks never come from a loop
