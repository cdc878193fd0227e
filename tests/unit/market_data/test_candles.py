"""Candles from real USD/JPY ticks: live aggregator vs an independent pandas resample and vs polars."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest

from services.market_data.batch import aggregate, candles_from, ticks_frame
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedTick
from services.market_data.feeds.replay import TickFileFeed
from services.market_data.instruments import Timeframe
from tests.support.data import shared_data_dir

TICKS = shared_data_dir() / "usdjpy-ticks-truefx-2013-01-01.csv"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
async def real_ticks() -> list[FeedTick]:
    feed = TickFileFeed(TICKS)
    ticks = [t async for t in feed.ticks()]
    assert feed.stats.malformed == 0 and len(ticks) == 1000
    return ticks


def live_candles(ticks, timeframe=None):
    aggregator = CandleAggregator()
    closed = [c for t in ticks for c in aggregator.on_tick(t)] + aggregator.close_due(FAR_FUTURE)
    return [c for c in closed if timeframe is None or c.timeframe is timeframe]


@pytest.mark.parametrize("timeframe, rule", [(Timeframe.S5, "5s"), (Timeframe.M1, "1min"), (Timeframe.M5, "5min")])
def test_live_candles_equal_an_independent_pandas_resample(real_ticks, timeframe, rule):
    frame = pd.read_csv(TICKS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame["mid"] = (frame["bid"] + frame["ask"]) / 2
    frame = frame.set_index("timestamp")
    expected = pd.concat({side: frame[side].resample(rule).ohlc() for side in ("bid", "ask", "mid")}, axis=1)
    counts = frame["bid"].resample(rule).count()
    expected, counts = expected[counts > 0], counts[counts > 0]  # an empty bucket is no candle

    candles = live_candles(real_ticks, timeframe)
    assert len(candles) == len(expected) > 5
    for candle, (start, row), count in zip(candles, expected.iterrows(), counts):
        assert candle.start == start.to_pydatetime()
        assert candle.end == candle.start + timedelta(seconds=timeframe.seconds)
        assert candle.tick_count == count
        for side in ("bid", "ask", "mid"):
            ohlc = getattr(candle, side)
            for field in ("open", "high", "low", "close"):
                assert getattr(ohlc, field) == pytest.approx(row[(side, field)], abs=1e-12), (side, field, start)


def test_live_and_polars_give_identical_candles_on_real_ticks(real_ticks):
    frame = ticks_frame(real_ticks)
    for timeframe in Timeframe:
        batch = candles_from(aggregate(frame, timeframe), timeframe)
        assert live_candles(real_ticks, timeframe) == batch, timeframe


def test_buckets_are_utc_aligned_and_a_tick_on_the_boundary_opens_the_next(real_ticks):
    aggregator = CandleAggregator([Timeframe.M1, Timeframe.H4, Timeframe.D1])
    base = datetime(2013, 1, 2, 3, 59, 59, tzinfo=timezone.utc)
    assert aggregator.on_tick(FeedTick("USD_JPY", base, Decimal("86.1"), Decimal("86.2"))) == []
    closed = aggregator.on_tick(FeedTick("USD_JPY", base + timedelta(seconds=1), Decimal("86.3"), Decimal("86.4")))
    assert [(c.timeframe, c.start.isoformat()) for c in closed] == [
        (Timeframe.M1, "2013-01-02T03:59:00+00:00"), (Timeframe.H4, "2013-01-02T00:00:00+00:00")]
    assert [c.tick_count for c in closed] == [1, 1]


def test_out_of_order_tick_is_counted_and_dropped_and_an_equal_timestamp_is_accepted():
    aggregator = CandleAggregator([Timeframe.S5])
    t0 = datetime(2013, 1, 1, 22, 0, 1, tzinfo=timezone.utc)
    aggregator.on_tick(FeedTick("USD_JPY", t0, Decimal("86.60"), Decimal("86.70")))
    aggregator.on_tick(FeedTick("USD_JPY", t0, Decimal("86.61"), Decimal("86.71")))  # same time: accepted
    late = FeedTick("USD_JPY", t0 - timedelta(milliseconds=1), Decimal("80"), Decimal("80.1"))
    assert aggregator.is_late(late)
    assert aggregator.on_tick(late) == []
    assert aggregator.late_ticks == {"USD_JPY": 1}
    # another instrument has its own clock
    assert not aggregator.is_late(FeedTick("BTC_JPY", t0 - timedelta(hours=1), Decimal("1"), Decimal("2")))
    (candle,) = aggregator.close_due(t0 + timedelta(seconds=4))
    assert candle.tick_count == 2 and candle.bid.low == 86.60 and candle.bid.close == 86.61


def test_close_due_closes_only_buckets_whose_end_has_passed(real_ticks):
    aggregator = CandleAggregator()
    for tick in real_ticks[:50]:
        aggregator.on_tick(tick)
    last = real_ticks[49].time
    open_before = aggregator.open_candles("USD_JPY")
    assert all(not c.closed for c in open_before) and len(open_before) == 6
    s5_end = open_before[0].end
    assert aggregator.close_due(s5_end - timedelta(microseconds=1)) == []
    closed = aggregator.close_due(s5_end)
    assert [c.timeframe for c in closed] == [Timeframe.S5] and closed[0].end == s5_end > last


def test_restore_from_stored_s5_candles_gives_the_same_candles_as_an_uninterrupted_run(real_ticks):
    reference = live_candles(real_ticks)
    cut = 600  # a restart in the middle of the M1, M5, H1, ... buckets
    first = CandleAggregator()
    stored = [c for t in real_ticks[:cut] for c in first.on_tick(t)]
    closed_until = {}
    for c in stored:
        closed_until[c.timeframe] = max(closed_until.get(c.timeframe, c.end), c.end)
    s5 = [c for c in stored if c.timeframe is Timeframe.S5]
    second = CandleAggregator()
    second.restore("USD_JPY", s5, closed_until, last_tick_time=closed_until[Timeframe.S5])
    # The replay restarts from the top of the file: what was ingested before is late and dropped.
    after = [c for t in real_ticks for c in second.on_tick(t)] + second.close_due(FAR_FUTURE)
    assert second.late_ticks["USD_JPY"] > 0
    key = lambda c: (c.timeframe.seconds, c.start)  # noqa: E731
    assert sorted(stored + after, key=key) == sorted(reference, key=key)
