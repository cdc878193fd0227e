"""Replay files (ticks, Parquet, bid/ask bars), malformed rows, the synthetic market and pacing."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import polars as pl
import pytest

from services.common.clock import SimulatedClock
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.pacing import Pacing, Speed
from services.market_data.feeds.replay import BarFilesFeed, TickFileFeed, bar_ticks
from services.market_data.feeds.synthetic import SyntheticFeed, weekend_closed_at
from services.market_data.instruments import Timeframe
from tests.support.data import M1_ASK, M1_BID, TRUEFX_TICKS, head_of



async def test_malformed_tick_rows_are_counted_and_summarized_once_never_logged_line_by_line(tmp_path, caplog):
    path = tmp_path / "ticks.csv"
    path.write_text(
        "timestamp,bid,ask,volume\n"
        "2013-01-01 22:00:00+00:00,86.655,86.728,1\n"      # line 2: good
        "2013-01-01 22:00:01+00:00,abc,86.728,\n"          # line 3: bad number
        "2013-01-01 22:00:02+00:00,86.655\n"               # line 4: missing field
        "2013-01-01 22:00:03+00:00,NaN,86.728,\n"          # line 5: NaN
        "2013-01-01 22:00:04+00:00,86.800,86.728,\n"       # line 6: bid above ask
        "not-a-time,86.655,86.728,\n"                      # line 7: bad timestamp
        "2013-01-01 22:00:05+00:00,-1,86.728,\n"           # line 8: negative price
        "2013-01-01 22:00:06,86.656,86.729,2.5\n")         # line 9: good, naive = UTC
    feed = TickFileFeed(path)
    with caplog.at_level(logging.DEBUG):
        ticks = [t async for t in feed.ticks()]
    assert [t.bid for t in ticks] == [Decimal("86.655"), Decimal("86.656")]
    assert ticks[1].time == datetime(2013, 1, 1, 22, 0, 6, tzinfo=timezone.utc) and ticks[1].volume == Decimal("2.5")
    assert feed.stats.rows_read == 8 and feed.stats.malformed == 6
    assert feed.stats.malformed_lines == [3, 4, 5, 6, 7, 8]
    assert caplog.records == []  # nothing per row
    assert feed.stats.summary("ticks.csv") == (
        "skipped 6 of 8 rows of ticks.csv:\n"
        "  ticks.csv:3: bid='abc' is not a number\n"
        "  ticks.csv:4: ask is missing\n"
        "  ticks.csv:5: bid='NaN' is not a positive finite price\n"
        "  ticks.csv:6: bid 86.800 is above ask 86.728\n"
        "  ticks.csv:7: timestamp 'not-a-time' is neither ISO-8601 nor a number since the epoch\n"
        "  ... and 1 more")


async def test_a_parquet_tick_file_replays_like_its_csv(tmp_path):
    csv_path = TRUEFX_TICKS
    frame = pl.read_csv(csv_path).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    frame.write_parquet(tmp_path / "ticks.parquet")
    from_csv = [t async for t in TickFileFeed(csv_path).ticks()]
    from_parquet = [t async for t in TickFileFeed(tmp_path / "ticks.parquet").ticks()]
    assert len(from_parquet) == 1000
    assert [(t.time, float(t.bid), float(t.ask)) for t in from_parquet] == \
           [(t.time, float(t.bid), float(t.ask)) for t in from_csv]


async def test_m1_mid_candles_from_bar_files_equal_the_average_of_the_two_files(tmp_path):
    rows = 2000
    head_of(M1_BID, tmp_path / "bid.csv", rows)
    head_of(M1_ASK, tmp_path / "ask.csv", rows)
    feed = BarFilesFeed(tmp_path / "bid.csv", tmp_path / "ask.csv")
    aggregator = CandleAggregator([Timeframe.M1])
    candles = [c async for t in feed.ticks() for c in aggregator.on_tick(t)]
    candles += aggregator.close_due(datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert feed.stats.malformed == 0 and len(candles) == rows
    bid, ask = pd.read_csv(tmp_path / "bid.csv"), pd.read_csv(tmp_path / "ask.csv")
    for i, candle in enumerate(candles):
        assert candle.start == datetime.fromisoformat(bid["timestamp"][i])
        assert candle.tick_count == 4
        for field in ("open", "high", "low", "close"):
            assert getattr(candle.mid, field) == pytest.approx((bid[field][i] + ask[field][i]) / 2, abs=1e-9)
            assert getattr(candle.bid, field) == pytest.approx(bid[field][i], abs=1e-12)
            assert getattr(candle.ask, field) == pytest.approx(ask[field][i], abs=1e-12)


def test_bar_path_visits_the_extreme_nearer_to_the_open_first():
    start = datetime(2013, 2, 1, tzinfo=timezone.utc)
    near_high = bar_ticks("USD_JPY", start, *[tuple(Decimal(v) for v in bar) for bar in
                                              (("10.8", "11", "10", "10.5"), ("10.9", "11.1", "10.1", "10.6"))])
    assert [t.bid for t in near_high] == [Decimal("10.8"), Decimal("11"), Decimal("10"), Decimal("10.5")]
    assert [(t.time - start).seconds for t in near_high] == [0, 15, 30, 45]
    near_low = bar_ticks("USD_JPY", start, *[tuple(Decimal(v) for v in bar) for bar in
                                             (("10.1", "11", "10", "10.5"), ("10.2", "11.1", "10.1", "10.6"))])
    assert [t.bid for t in near_low] == [Decimal("10.1"), Decimal("10"), Decimal("11"), Decimal("10.5")]


async def test_malformed_bar_rows_are_skipped_with_their_line(tmp_path):
    header = "timestamp,open,high,low,close\n"
    (tmp_path / "bid.csv").write_text(header + "2013-02-01 00:00:00+00:00,1,1.2,0.9,1.1\n"
                                      "2013-02-01 00:01:00+00:00,1,0.9,1.2,1.1\n"      # high below low
                                      "2013-02-01 00:02:00+00:00,1,1.2,0.9,1.1\n"
                                      "2013-02-01 00:04:00+00:00,1,1.2,0.9,1.1\n")     # no ask minute
    (tmp_path / "ask.csv").write_text(header + "2013-02-01 00:00:00+00:00,1.01,1.21,0.91,1.11\n"
                                      "2013-02-01 00:01:00+00:00,1.01,1.21,0.91,1.11\n"
                                      "2013-02-01 00:02:00+00:00,1.01,1.21,,1.11\n"     # missing low
                                      "2013-02-01 00:03:00+00:00,1.01,1.21,0.91,1.11\n")  # no bid minute
    feed = BarFilesFeed(tmp_path / "bid.csv", tmp_path / "ask.csv")
    ticks = [t async for t in feed.ticks()]
    assert len(ticks) == 4 and feed.stats.malformed == 4
    assert feed.stats.malformed_lines == [3, 4, 5, 5]  # ask lines 3, 4, 5, then the bid file's line 5


async def test_synthetic_feed_is_deterministic_for_a_seed():
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    first = list(itertools.islice(SyntheticFeed(("USD_JPY", "BTC_JPY"), seed=11, start=start).generate(), 2000))
    again = list(itertools.islice(SyntheticFeed(("USD_JPY", "BTC_JPY"), seed=11, start=start).generate(), 2000))
    other = list(itertools.islice(SyntheticFeed(("USD_JPY", "BTC_JPY"), seed=12, start=start).generate(), 2000))
    assert first == again and first != other
    assert {t.instrument for t in first} == {"USD_JPY", "BTC_JPY"}
    assert all(a.time <= b.time for a, b in zip(first, first[1:]))


def test_synthetic_feed_is_closed_over_the_weekend_and_gaps_on_reopen():
    start = datetime(2026, 1, 9, 21, 50, tzinfo=timezone.utc)  # a Friday, ten minutes before the close
    ticks = list(itertools.islice(SyntheticFeed(("USD_JPY",), seed=7, start=start).generate(), 3000))
    assert not any(weekend_closed_at(t.time) for t in ticks)
    gaps = [(a, b) for a, b in zip(ticks, ticks[1:]) if b.time - a.time > timedelta(hours=1)]
    assert len(gaps) == 1
    friday, sunday = gaps[0]
    assert friday.time < datetime(2026, 1, 9, 22, tzinfo=timezone.utc)
    assert datetime(2026, 1, 11, 22, tzinfo=timezone.utc) <= sunday.time < datetime(2026, 1, 11, 22, 1, tzinfo=timezone.utc)
    normal_moves = sorted(abs(b.bid - a.bid) for a, b in zip(ticks, ticks[1:]) if (a, b) != gaps[0])
    assert abs(sunday.bid - friday.bid) > normal_moves[len(normal_moves) // 2]  # a gap, not a normal tick


def test_synthetic_quotes_have_a_positive_spread_on_the_tick_grid_that_widens_with_volatility():
    ticks = list(itertools.islice(SyntheticFeed(("USD_JPY",), seed=3, start=datetime(2026, 1, 5, tzinfo=timezone.utc)).generate(), 20_000))
    spreads = [t.ask - t.bid for t in ticks]
    assert min(spreads) > 0
    assert all(t.bid == t.bid.quantize(Decimal("0.001")) and t.ask == t.ask.quantize(Decimal("0.001")) for t in ticks)
    assert all(Decimal("140") < t.bid < Decimal("160") for t in ticks)
    gaps = [(b.time - a.time).total_seconds() for a, b in zip(ticks, ticks[1:])]
    assert 0.2 <= min(gaps) and max(gaps) <= 1.0
    moves = [abs(b.bid + b.ask - a.bid - a.ask) for a, b in zip(ticks, ticks[1:])]
    ranked = sorted(moves)
    calm_limit, busy_limit = ranked[len(ranked) // 10], ranked[-len(ranked) // 10]
    calm = [s for s, m in zip(spreads[1:], moves) if m <= calm_limit]
    busy = [s for s, m in zip(spreads[1:], moves) if m >= busy_limit]
    assert sum(busy) / len(busy) > sum(calm) / len(calm)
    assert len(set(spreads)) > 1


def test_speed_parses_max_realtime_and_multiples_and_refuses_anything_else():
    assert Speed.parse("max").factor is None and Speed.parse("realtime").factor == 1.0
    assert Speed.parse("10x").factor == 10.0 and str(Speed.parse("2.5x")) == "2.5x"
    for bad in ("fast", "0x", "-2x", "x", "infx", "nanx"):
        with pytest.raises(ValueError, match="not a replay speed"):
            Speed.parse(bad)


async def test_max_speed_advances_a_simulated_clock_to_each_tick():
    feed = TickFileFeed(TRUEFX_TICKS)
    pacing = Pacing(Speed(None))
    seen = []
    await pacing.run(feed, lambda t: seen.append((t.time, pacing.clock.now())), lambda now: None)
    assert isinstance(pacing.clock, SimulatedClock) and len(seen) == 1000
    assert all(tick_time == clock_time for tick_time, clock_time in seen)


async def test_paced_speed_reports_feed_time_before_the_next_tick_and_never_past_it():
    class TwoTicks:
        name, instruments = "two", ("USD_JPY",)

        async def ticks(self):
            start = datetime(2013, 1, 1, tzinfo=timezone.utc)
            for offset in (0, 3):
                yield (await _tick(start + timedelta(seconds=offset)))

    async def _tick(moment):
        from services.market_data.feeds.base import FeedTick
        return FeedTick("USD_JPY", moment, Decimal("1"), Decimal("1.1"))

    events = []
    await Pacing(Speed(30.0)).run(TwoTicks(), lambda t: events.append(("tick", t.time)),
                                  lambda now: events.append(("time", now)))
    assert events[0][0] == "tick" and events[-1][0] == "tick"
    times = [moment for kind, moment in events]
    assert times == sorted(times) and any(kind == "time" for kind, _ in events)


async def test_a_paced_synthetic_feed_starting_in_a_closed_weekend_waits_for_the_reopen():
    friday_night = datetime(2026, 1, 9, 23, 0, tzinfo=timezone.utc)
    feed = SyntheticFeed(("USD_JPY",), seed=7, start=friday_night)
    pacing = Pacing(Speed(1.0))
    seen = []
    task = asyncio.create_task(pacing.run(feed, seen.append, lambda now: None))
    await asyncio.sleep(0.3)
    task.cancel()
    assert seen == []  # the first tick is on Sunday 22:00; a real-time pacer does not jump there
    assert pacing.clock.now() < datetime(2026, 1, 9, 23, 1, tzinfo=timezone.utc)


async def test_skip_closures_does_not_wait_out_a_weekend_but_keeps_the_gap():
    import asyncio
    from datetime import datetime, timedelta, timezone
    from decimal import Decimal

    from services.market_data.feeds.base import FeedTick
    from services.market_data.feeds.pacing import Pacing, Speed

    friday = datetime(2013, 2, 1, 21, 59, 59, tzinfo=timezone.utc)
    sunday = friday + timedelta(hours=48)

    class TwoTicks:
        name, instruments = "two", ("USD_JPY",)

        async def ticks(self):
            for moment in (friday, sunday):
                yield FeedTick("USD_JPY", moment, Decimal("90.000"), Decimal("90.010"))

    seen: list[tuple[str, datetime]] = []
    pacing = Pacing(Speed.parse("realtime"), skip_closures=True)
    # Without skipping this would wait 48 hours; the bound only detects that failure.
    await asyncio.wait_for(pacing.run(TwoTicks(), lambda t: seen.append(("tick", t.time)),
                                      lambda now: seen.append(("time", now))), timeout=20)
    ticks = [moment for kind, moment in seen if kind == "tick"]
    assert ticks == [friday, sunday]  # the data keeps its weekend gap
    assert ("time", sunday) in seen and seen.index(("time", sunday)) < seen.index(("tick", sunday))
    assert abs((pacing.clock.now() - sunday).total_seconds()) < 5  # re-anchored at the reopen
