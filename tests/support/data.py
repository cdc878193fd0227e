"""Where the shared, read-only real market data lives."""

from __future__ import annotations

from pathlib import Path

from services.market_data.feeds.base import FeedTick
from services.market_data.feeds.replay import TickFileFeed

from tests.support.postgres import PROJECT_ROOT


def shared_data_dir() -> Path:
    return PROJECT_ROOT.parent / "shared" / "data"


async def truefx_ticks() -> list[FeedTick]:
    """The 1,000 real USD/JPY TrueFX ticks of 2013-01-01, read with the replay feed."""
    feed = TickFileFeed(shared_data_dir() / "usdjpy-ticks-truefx-2013-01-01.csv")
    ticks = [t async for t in feed.ticks()]
    assert feed.stats.malformed == 0 and len(ticks) == 1000
    return ticks
