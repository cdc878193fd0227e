"""Durable before delivered, in one process: the candle and factor streams carry an event only
once the repository has stored it, in seq order, and PublishTicks' engine call waits for that."""

from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timezone

from services.common.streams import Broadcaster
from services.market_data.candles import CandleAggregator
from services.market_data.engine import MarketDataEngine
from services.market_data.events import CandleEvent, FactorEvent, TickEvent
from services.market_data.factors import FactorEngine, parse_factors
from services.market_data.feeds.synthetic import SyntheticFeed
from services.market_data.instruments import spec_for
from services.market_data.recorder import CandleRecorder

START = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


class GatedRepository:
    """Stores only when the test opens the gate; fails the first `failures` attempts."""

    def __init__(self, failures: int = 0) -> None:
        self.gate = asyncio.Event()
        self.failures = failures
        self.batches: list[tuple[list[int], list[int]]] = []

    async def store(self, candles, factors) -> None:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database went away")
        self.batches.append(([s for s, _ in candles], [s for s, _ in factors]))


def plane_parts(repository, *, stored_candles: int = 0):
    candles = Broadcaster[CandleEvent](name="candle", last_seq=stored_candles)
    factors = Broadcaster[FactorEvent](name="factor")
    recorder = CandleRecorder(repository, candle_stream=candles, factor_stream=factors, retry_seconds=0)
    engine = MarketDataEngine(instruments=[spec_for("USD_JPY")], feed_name="push", aggregator=CandleAggregator(),
                              factors=FactorEngine(parse_factors("sma:2")), tick_stream=Broadcaster[TickEvent](
                                  name="tick"), candle_stream=candles, factor_stream=factors, tick_window=100,
                              recorder=recorder)
    return engine, recorder


async def test_nothing_is_streamed_before_it_is_stored_and_seqs_continue_from_the_stored_ones():
    repository = GatedRepository(failures=2)
    engine, recorder = plane_parts(repository, stored_candles=41)
    recorder.start()
    ticks = list(itertools.islice(SyntheticFeed(("USD_JPY",), seed=1, start=START).generate(), 400))
    publishing = asyncio.ensure_future(engine.publish(ticks))
    while recorder.last_candle_seq == 41:  # ingested: seqs handed out, nothing stored yet
        await asyncio.sleep(0)
    for _ in range(50):
        await asyncio.sleep(0)
    assert not publishing.done()
    assert engine.candle_stream.last_seq == 41 and engine.factor_stream.last_seq == 0
    repository.gate.set()  # two failed attempts, retried with the same batch, then stored
    done = await publishing
    assert done.last_candle_seq == engine.candle_stream.last_seq == recorder.last_candle_seq > 41
    assert done.last_factor_seq == engine.factor_stream.last_seq > 0
    stored_candles = [seq for candles, _ in repository.batches for seq in candles]
    assert stored_candles == list(range(42, done.last_candle_seq + 1))
    assert done.candles_closed == done.last_candle_seq - 41
    await recorder.stop()


async def test_a_subscriber_sees_events_in_seq_order_only_after_their_batch_is_stored():
    repository = GatedRepository()
    engine, recorder = plane_parts(repository)
    recorder.start()
    seen: list[tuple[int, int]] = []  # (seq, the highest stored seq when it arrived)

    async def subscribe():
        async for seq, _ in engine.candle_stream.subscribe(after_seq=0):
            seen.append((seq, max((s for candles, _ in repository.batches for s in candles), default=0)))

    subscriber = asyncio.ensure_future(subscribe())
    ticks = list(itertools.islice(SyntheticFeed(("USD_JPY",), seed=2, start=START).generate(), 300))
    for tick in ticks:
        engine.on_tick(tick)
    for _ in range(50):
        await asyncio.sleep(0)
    assert seen == []
    repository.gate.set()
    await recorder.flush()
    for _ in range(10):
        await asyncio.sleep(0)
    subscriber.cancel()
    assert [seq for seq, _ in seen] == list(range(1, recorder.last_candle_seq + 1))
    assert all(seq <= stored for seq, stored in seen)
    await recorder.stop()
