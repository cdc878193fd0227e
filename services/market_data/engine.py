"""The market-data engine: ticks in; tick window, candles and factors out, to streams and storage.

Single writer: only the feed task calls `on_tick` / `on_time`, or, on a push plane (no feed
task), `publish`, which takes one request at a time.
Ticks are streamed as they are ingested (they are kept in memory only); closed candles and
factor sets go to the recorder, which streams them once they are stored (recorder.py).
Each closed candle is handled inside a span (the root of the trace of any decision it causes),
and candle and factor events carry its trace context; ticks carry none (no span per tick).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from opentelemetry import trace

from services.common.streams import Broadcaster
from quantmesh.common.v1 import common_pb2
from services.market_data.candles import Candle, CandleAggregator
from services.market_data.events import CandleEvent, FactorEvent, TickEvent
from services.market_data.factors import FactorEngine
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import InstrumentSpec
from services.market_data.recorder import PublishAtOnce, Recorder

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
_NO_TRACE = common_pb2.TraceContext()

_YIELD_EVERY = 256  # published ticks between yields to the event loop, so streams keep flowing


@dataclass(frozen=True, slots=True)
class Published:
    """What one batch of published ticks did, and where the streams stand after it."""

    accepted: int
    late: int
    candles_closed: int
    last_tick_seq: int
    last_candle_seq: int
    last_factor_seq: int


def _trace_context_of(span: trace.Span) -> common_pb2.TraceContext:
    """The W3C trace context of `span`, formatted directly: the same text as
    services.common.telemetry.current_trace_context(), without a propagator round trip per tick."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return common_pb2.TraceContext()
    state = ctx.trace_state.to_header() if ctx.trace_state else ""
    return common_pb2.TraceContext(traceparent=f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}",
                                   tracestate=state)


class MarketDataEngine:
    def __init__(self, *, instruments: Iterable[InstrumentSpec], feed_name: str, aggregator: CandleAggregator,
                 factors: FactorEngine, tick_stream: Broadcaster[TickEvent],
                 candle_stream: Broadcaster[CandleEvent], factor_stream: Broadcaster[FactorEvent],
                 tick_window: int, recorder: Recorder | None = None) -> None:
        self.instruments = {spec.symbol: spec for spec in instruments}
        self.feed_name = feed_name
        self.aggregator = aggregator
        self.factors = factors
        self.tick_stream, self.candle_stream, self.factor_stream = tick_stream, candle_stream, factor_stream
        # Without a database (benchmarks, in-process use) closed candles are streamed at once.
        self._recorder = recorder if recorder is not None else PublishAtOnce(candle_stream, factor_stream)
        self._window = {s: collections.deque(maxlen=tick_window) for s in self.instruments}
        self._last: dict[str, tuple[int, TickEvent]] = {}
        self.ticks_accepted = 0
        self.ticks_unknown = 0
        self.feed_ended = False
        self._publishing = asyncio.Lock()

    def on_tick(self, tick: FeedTick) -> None:
        if tick.instrument not in self.instruments:
            # A feed carrying more than it was configured for: count it, never stream it.
            self.ticks_unknown += 1
            return
        if self.aggregator.is_late(tick):
            self.aggregator.on_tick(tick)  # counts it in aggregator.late_ticks and drops it
            log.debug("dropped an out-of-order tick", extra={"instrument": tick.instrument, "time": tick.time})
            return
        # No span per tick (thousands a second, almost none leading to a decision): a trace starts
        # where a decision can, at the candle the tick closes (market_data.close_candle).
        event = TickEvent(tick, _NO_TRACE)
        seq = self.tick_stream.publish(event)
        self._window[tick.instrument].append((seq, event))
        self._last[tick.instrument] = (seq, event)
        self.ticks_accepted += 1
        for candle in self.aggregator.on_tick(tick):
            self._on_closed(candle)

    async def publish(self, ticks: Sequence[FeedTick]) -> Published:
        """Ingests pushed ticks in order, as one batch, and returns once the candles and factor
        sets they closed are stored and streamed: what the answer names, the streams carry.

        The lock keeps two batches from interleaving their ticks: ingesting yields to the event
        loop now and then, so a big batch does not stall the streams that carry its results.
        The wait for storage is outside the lock, so the next batch is ingested meanwhile.
        """
        recorder = self._recorder
        async with self._publishing:
            accepted, candles = self.ticks_accepted, recorder.last_candle_seq
            late = 0
            for count, tick in enumerate(ticks, 1):
                if self.aggregator.is_late(tick):
                    late += 1
                self.on_tick(tick)
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            done = Published(accepted=self.ticks_accepted - accepted, late=late,
                             candles_closed=recorder.last_candle_seq - candles,
                             last_tick_seq=self.tick_stream.last_seq, last_candle_seq=recorder.last_candle_seq,
                             last_factor_seq=recorder.last_factor_seq)
        await recorder.wait_published(done.last_candle_seq, done.last_factor_seq)
        return done

    def on_time(self, now: datetime) -> None:
        """The feed clock reached `now`: closes the candles whose end has passed."""
        closed = self.aggregator.close_due(now)
        if closed:
            with _tracer.start_as_current_span("market_data.close_due"):
                for candle in closed:
                    self._on_closed(candle)

    def _on_closed(self, candle: Candle) -> None:
        with _tracer.start_as_current_span("market_data.close_candle") as span:
            span.set_attribute("instrument", candle.instrument)
            span.set_attribute("timeframe", candle.timeframe.name)
            context = _trace_context_of(span)
            self._recorder.record_candle(CandleEvent(candle, context))
            values = self.factors.on_candle(candle)
            if values is not None:
                self._recorder.record_factors(FactorEvent(candle.instrument, candle.timeframe, candle.start,
                                                          values, context))

    def quote(self, instrument: str) -> tuple[int, TickEvent] | None:
        return self._last.get(instrument)

    def tick_window(self, instrument: str) -> list[tuple[int, TickEvent]]:
        return list(self._window.get(instrument, ()))

    def last_tick_time(self, instrument: str) -> datetime | None:
        last = self._last.get(instrument)
        return last[1].tick.time if last else None
