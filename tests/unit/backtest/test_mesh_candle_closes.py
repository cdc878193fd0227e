"""The mesh driver counts the candles each tick closes by the market-data aggregator's own rule.

It streams only the timeframes its workers read, so it cannot wait for a seq: it waits for
as many candles as it counted. A miscount would hang a step or shift a candle into the next
one, so the count is checked here against the aggregator itself, tick by tick.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.backtest.mesh import CandleCloses, MeshBacktestError, _Stream
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedTick

T0 = datetime(2013, 2, 4, 23, 59, 50, tzinfo=timezone.utc)


def tick(time: datetime) -> FeedTick:
    return FeedTick("USD_JPY", time, Decimal("92.001"), Decimal("92.004"))


def tick_times(seed: int, count: int) -> list[datetime]:
    """Quotes microseconds to hours apart (every timeframe closes, some buckets stay empty),
    with late ones: some one microsecond late, some earlier than a whole bucket."""
    rng = random.Random(seed)
    times, now = [], T0
    for _ in range(count):
        kind = rng.random()
        if kind < 0.1 and times:
            times.append(now - rng.choice((timedelta(microseconds=1), timedelta(seconds=7), timedelta(minutes=3))))
            continue
        if kind < 0.15:
            times.append(now)  # the same time again: not late
            continue
        step = rng.choice((timedelta(microseconds=1), timedelta(milliseconds=250), timedelta(seconds=4),
                           timedelta(seconds=61), timedelta(minutes=7), timedelta(hours=5)))
        now += step * rng.randint(1, 3)
        times.append(now)
    return times


@pytest.mark.parametrize("seed", range(5))
def test_the_count_of_each_tick_is_the_aggregators(seed):
    aggregator, closes = CandleAggregator(), CandleCloses()
    for time in tick_times(seed, 3_000):
        late = aggregator.is_late(tick(time))
        closed = aggregator.on_tick(tick(time))
        counted = closes.on_tick(time)
        if late:
            assert counted is None and closed == []
        else:
            assert Counter(counted) == Counter(c.timeframe.seconds for c in closed), time


def test_the_first_tick_closes_nothing_and_a_gap_closes_one_candle_per_timeframe():
    closes = CandleCloses()
    assert closes.on_tick(T0) == []
    assert sorted(closes.on_tick(T0 + timedelta(days=3))) == [5, 60, 300, 3_600, 14_400, 86_400]
    assert closes.on_tick(T0 + timedelta(days=3, seconds=1)) == []
    assert closes.on_tick(T0) is None


class FakeCall:
    """A server stream that sends the given seqs, then stays open."""

    def __init__(self, seqs: list[int]) -> None:
        self._seqs = seqs
        self._canceled = asyncio.Event()

    def __aiter__(self):
        return self._events()

    async def _events(self):
        from quantmesh.market_data.v1 import market_data_pb2

        for seq in self._seqs:
            yield market_data_pb2.StreamCandlesResponse(seq=seq)
        await self._canceled.wait()

    def cancel(self) -> None:
        self._canceled.set()


async def test_a_miscount_stops_the_run_instead_of_shifting_a_candle_into_the_next_step():
    stream = _Stream("candle", FakeCall([2, 5, 6]))
    try:
        # Seqs 1, 3 and 4 are of timeframes the driver does not stream.
        assert [e.seq for e in await stream.read_count(1, 4, timeout=5)] == [2]
        assert [e.seq for e in await stream.read_count(0, 4, timeout=5)] == []
        with pytest.raises(MeshBacktestError, match="sent seq 6 in the step of seqs 5..5"):
            await stream.read_count(2, 5, timeout=5)  # counted one too many
    finally:
        await stream.close()


async def test_an_undercount_is_found_at_the_next_step():
    stream = _Stream("candle", FakeCall([2, 3]))
    try:
        assert [e.seq for e in await stream.read_count(1, 3, timeout=5)] == [2]  # seq 3 was missed
        with pytest.raises(MeshBacktestError, match="sent seq 3 in the step of seqs 4..9"):
            await stream.read_count(1, 9, timeout=5)
    finally:
        await stream.close()
