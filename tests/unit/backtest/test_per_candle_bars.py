"""The Bars the fast path hands a per-candle rule are the live worker's, field for field.

The event path's candles come from the live aggregator (services/market_data/candles.py) tick by
tick; the fast path builds them from the tick columns with numpy (services/backtest/fast.py). A
strategy answering per candle (services/strategies/per_candle.py) may read any field of a Bar,
so every field must agree, volume (an exact sum of decimal volumes, rounded once) included.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from services.backtest.cache import TickCache
from services.backtest.data import MarketData
from services.backtest.fast import decision_candles
from services.backtest.inprocess import to_bar
from services.market_data.candles import CandleAggregator
from services.market_data.instruments import Timeframe
from services.strategies.per_candle import _bars


@pytest.fixture
def quotes_with_volumes(tmp_path):
    """Forty minutes of quotes, a few seconds apart, with decimal volumes whose float sums differ from
    their exact ones (0.1 + 0.2), and several ticks in one millisecond now and then."""
    rng = random.Random(7)
    moment, price = datetime(2013, 2, 4, 0, 0, 0, 300_000, tzinfo=timezone.utc), 92.5
    rows = ["timestamp,bid,ask,volume"]
    while moment < datetime(2013, 2, 4, 0, 40, tzinfo=timezone.utc):
        price += rng.choice((-0.004, -0.001, 0, 0.002, 0.005))
        volume = rng.choice(("0.1", "0.2", "0.3", "1.25", "1000000.01"))
        rows.append(f"{moment.isoformat()},{price:.3f},{price + 0.012:.3f},{volume}")
        moment += timedelta(milliseconds=rng.choice((0, 700, 2_300, 9_100)))
    path = tmp_path / "quotes.csv"
    path.write_text("\n".join(rows) + "\n")
    return MarketData(str(path), "USD_JPY", cache=TickCache(tmp_path / "cache"))


@pytest.mark.parametrize("timeframe", ["M1", "M5"])
async def test_every_field_of_every_bar_is_the_aggregators(quotes_with_volumes, timeframe):
    aggregator = CandleAggregator([Timeframe[timeframe]])
    live = []
    async for tick in quotes_with_volumes.ticks():
        live += [to_bar(c) for c in aggregator.on_tick(tick)]
    columns = decision_candles(await quotes_with_volumes.columns(), timeframe).candles
    fast = list(_bars(columns, "USD_JPY", timeframe))
    assert len(live) >= (30 if timeframe == "M1" else 6)
    assert fast == live
    assert len({bar.volume for bar in live}) > 5 and all(bar.closed_time >= bar.end for bar in live)
