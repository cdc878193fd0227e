"""Candle volume is an exact sum: live, batch (polars) and a bucket rebuilt after a restart agree to the bit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.market_data.batch import aggregate, candles_from, ticks_frame
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import TIMEFRAMES, Timeframe

T0 = datetime(2026, 1, 5, 23, 58, tzinfo=timezone.utc)  # near midnight, so D1 and H4 buckets close too
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=timezone.utc)

volumes = st.one_of(
    st.decimals(min_value=0, max_value=10**9, places=0),                 # FX units
    st.decimals(min_value=0, max_value=1000, places=8),                  # crypto quantities
    st.sampled_from([Decimal("0.1"), Decimal("0.2"), Decimal("0.3"), Decimal("1e-8"), Decimal("123456.789")]))
steps = st.tuples(st.integers(min_value=0, max_value=40_000_000),        # µs since the previous tick
                  st.sampled_from(["USD_JPY", "BTC_JPY"]), volumes)


def ticks_of(draws) -> list[FeedTick]:
    ticks, moment = [], T0
    for gap, instrument, volume in draws:
        moment += timedelta(microseconds=gap)
        ticks.append(FeedTick(instrument, moment, Decimal("150.001"), Decimal("150.004"), volume))
    return ticks


def live(ticks, *, close_at=FAR_FUTURE):
    aggregator = CandleAggregator()
    return [c for t in ticks for c in aggregator.on_tick(t)] + aggregator.close_due(close_at)


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, min_size=1, max_size=200))
def test_live_and_batch_volumes_are_identical_exact_sums(draws):
    ticks = ticks_of(draws)
    closed = live(ticks)
    frame = ticks_frame(ticks)
    for timeframe in TIMEFRAMES:
        batch = candles_from(aggregate(frame, timeframe, closed_at=FAR_FUTURE), timeframe)
        mine = sorted((c for c in closed if c.timeframe is timeframe), key=lambda c: (c.instrument, c.start))
        assert mine == batch, timeframe  # every field, the float volume included, to the bit
        for candle in batch:
            in_bucket = [t.volume for t in ticks if t.instrument == candle.instrument
                         and candle.start <= t.time < candle.end]
            assert candle.exact_volume == sum(in_bucket, Decimal(0))
            assert candle.volume == float(candle.exact_volume)


def test_a_float_sum_would_differ_where_the_exact_sum_does_not():
    tenths = [Decimal("0.1")] * 3
    assert sum(float(v) for v in tenths) != 0.3  # what a float accumulator gives
    ticks = [FeedTick("USD_JPY", T0 + timedelta(seconds=i), Decimal("1"), Decimal("1"), v)
             for i, v in enumerate(tenths)]  # one bucket of every timeframe
    closed = live(ticks)
    assert len(closed) == len(TIMEFRAMES)
    assert all(c.volume == 0.3 and c.exact_volume == Decimal("0.3") for c in closed)
    (batch,) = candles_from(aggregate(ticks_frame(ticks), Timeframe.S5), Timeframe.S5)
    assert batch.volume == 0.3


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, min_size=2, max_size=200), st.data())
def test_a_bucket_rebuilt_from_stored_s5_candles_gives_the_same_candles_as_an_uninterrupted_run(draws, data):
    ticks = ticks_of(draws)
    cut = data.draw(st.integers(min_value=1, max_value=len(ticks) - 1))
    whole = CandleAggregator()
    expected = [c for t in ticks for c in whole.on_tick(t)]

    before = CandleAggregator()
    stored = [c for t in ticks[:cut] for c in before.on_tick(t)]  # closed before the "crash", all stored
    after = CandleAggregator()
    resumed_from: dict[str, datetime] = {}
    for instrument in {t.instrument for t in ticks}:
        mine = [c for c in stored if c.instrument == instrument]
        closed_until = {}
        for c in mine:
            closed_until[c.timeframe] = max(closed_until.get(c.timeframe, c.end), c.end)
        if Timeframe.S5 not in closed_until:
            continue
        finer = [c for c in mine if c.timeframe is Timeframe.S5]
        after.restore(instrument, finer, closed_until, last_tick_time=closed_until[Timeframe.S5])
        resumed_from[instrument] = closed_until[Timeframe.S5]
    # The feed resends what the stored candles do not cover; older ticks are late and dropped.
    resent = [t for t in ticks if t.time >= resumed_from.get(t.instrument, T0)]
    produced = stored + [c for t in resent for c in after.on_tick(t)]
    key = lambda c: (c.instrument, c.timeframe.seconds, c.start)  # noqa: E731
    assert sorted(produced, key=key) == sorted(expected, key=key)
