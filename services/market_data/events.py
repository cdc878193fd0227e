"""What the plane streams: a tick, a closed candle or a factor set, with its trace context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from quantmesh.common.v1 import common_pb2
from services.market_data.candles import Candle
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe


@dataclass(slots=True, eq=False)
class TickEvent:
    tick: FeedTick
    trace_context: common_pb2.TraceContext
    # The servicer caches the encoded message here: one event goes to many subscribers,
    # and building it once per event instead of once per subscriber keeps fan-out cheap.
    wire: object = field(default=None, compare=False)


@dataclass(slots=True, eq=False)
class CandleEvent:
    candle: Candle
    trace_context: common_pb2.TraceContext
    wire: object = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, Timeframe]:
        return self.candle.instrument, self.candle.timeframe


@dataclass(slots=True, eq=False)
class FactorEvent:
    instrument: str
    timeframe: Timeframe
    candle_start: datetime
    values: dict[str, float]
    trace_context: common_pb2.TraceContext
    wire: object = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, Timeframe]:
        return self.instrument, self.timeframe
