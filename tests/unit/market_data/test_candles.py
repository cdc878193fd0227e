"""Candles from real USD/JPY ticks: live aggregator vs an independent pandas resample and vs polars."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest

from services.market_data.batch import aggregate, candles_from, ticks_frame
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe
from tests.support.data import TRUEFX_TICKS, truefx_ticks

TICKS = TRUEFX_TICKS
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
async def real_ticks() -> list[FeedTick]:
    return await truefx_ticks()


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
        # closed_at: the batch path closes the last buckets at the same feed time as the live close_due.
        batch = candles_from(aggregate(frame, timeframe, closed_at=FAR_FUTURE), timeframe)
        assert live_candles(real_ticks, timeframe) == batch, timeframe
        assert all(c.closed_time is not None for c in batch)


def test_polars_closed_time_is_the_first_tick_past_the_end_and_unknown_for_the_last_bucket(real_ticks):
    frame = ticks_frame(real_ticks)
    for timeframe in (Timeframe.S5, Timeframe.M1):
        live = live_candles(real_ticks, timeframe)
        batch = candles_from(aggregate(frame, timeframe), timeframe)
        assert batch[:-1] == live[:-1], timeframe  # closed by a tick: the same in both paths
        # The last bucket is closed by no tick; without the feed clock its closing time is unknown.
        assert batch[-1].closed_time is None and live[-1].closed_time == FAR_FUTURE
        assert replace(batch[-1], closed_time=FAR_FUTURE) == live[-1]
        first_past_end = {c.start: next(t.time for t in real_ticks if t.time >= c.end) for c in batch[:-1]}
        assert [c.closed_time for c in batch[:-1]] == list(first_past_end.values())
    # A feed clock before the last bucket's end does not close it, as close_due would not.
    early = candles_from(aggregate(frame, Timeframe.D1, closed_at=real_ticks[-1].time), Timeframe.D1)
    assert [c.closed_time for c in early] == [None]


def test_a_candle_carries_the_data_time_that_closed_it_on_both_closing_paths():
    aggregator = CandleAggregator([Timeframe.S5, Timeframe.M1])
    t0 = datetime(2013, 1, 1, 22, 0, 1, tzinfo=timezone.utc)
    aggregator.on_tick(FeedTick("USD_JPY", t0, Decimal("86.60"), Decimal("86.70")))
    assert [c.closed_time for c in aggregator.open_candles("USD_JPY")] == [None, None]
    closing = FeedTick("USD_JPY", t0 + timedelta(seconds=6, microseconds=250), Decimal("86.61"), Decimal("86.71"))
    (s5,) = aggregator.on_tick(closing)  # closed by a tick: that tick's time, not the bucket end
    assert s5.closed and s5.closed_time == closing.time and s5.end == t0 + timedelta(seconds=4)
    now = t0 + timedelta(minutes=3, seconds=7)
    by_clock = aggregator.close_due(now)  # closed by the feed clock: the time it was given
    assert [(c.timeframe, c.closed_time) for c in by_clock] == [(Timeframe.S5, now), (Timeframe.M1, now)]
    assert all(c.closed and c.closed_time > c.end for c in [s5, *by_clock])


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
