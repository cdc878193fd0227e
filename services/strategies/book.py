"""The candles and factors one worker sees, kept per timeframe for one instrument."""

from __future__ import annotations

import collections
from collections.abc import Mapping
from datetime import datetime, timezone
from types import MappingProxyType

import numpy as np

from quantmesh.market_data.v1 import market_data_pb2
from services.strategies.sdk import Bar, MarketView, Ohlc

TIMEFRAME_NAMES = {1: "S5", 2: "M1", 3: "M5", 4: "H1", 5: "H4", 6: "D1"}
TIMEFRAME_VALUES = {name: value for value, name in TIMEFRAME_NAMES.items()}


def _ohlc(message) -> Ohlc:
    return Ohlc(open=message.open, high=message.high, low=message.low, close=message.close)


def bar_from_proto(candle: market_data_pb2.Candle) -> Bar:
    return Bar(
        instrument=candle.instrument,
        timeframe=TIMEFRAME_NAMES[candle.timeframe],
        start=candle.start_time.ToDatetime(tzinfo=timezone.utc),
        end=candle.end_time.ToDatetime(tzinfo=timezone.utc),
        bid=_ohlc(candle.bid),
        ask=_ohlc(candle.ask),
        mid=_ohlc(candle.mid),
        tick_count=candle.tick_count,
        volume=candle.volume,
        closed_time=candle.closed_time.ToDatetime(tzinfo=timezone.utc) if candle.HasField("closed_time") else None,
    )


_SIDES = ("mid", "bid", "ask")
_FIELDS = ("open", "high", "low", "close")
_ROWS = {(side, name): i for i, (side, name) in enumerate((s, f) for s in _SIDES for f in _FIELDS)}


class _Columns:
    """The book's candles of one timeframe as float64 columns, appended as candles arrive.

    Rebuilding arrays from Bar objects at every decision was an eighth of a backtest's time.
    The columns only grow until the buffer is full, then the newest candles are copied to a
    new buffer, so an array handed to a decision is never written to afterwards. Decisions get
    slices of a read-only view of the buffer (setting the flag on every slice cost more than
    the slice).
    """

    __slots__ = ("depth", "data", "length", "offset", "_readonly")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._use(np.empty((len(_ROWS), 2 * depth + 16), dtype=np.float64))
        self.length = 0
        self.offset = 0

    def _use(self, data: np.ndarray) -> None:
        self.data = data
        self._readonly = data.view()
        self._readonly.flags.writeable = False

    def append(self, bar: Bar) -> None:
        end = self.offset + self.length
        if end == self.data.shape[1]:
            fresh = np.empty_like(self.data)
            keep = min(self.length, self.depth)
            fresh[:, :keep] = self.data[:, end - keep:end]
            self._use(fresh)
            self.offset, self.length, end = 0, keep, keep
        mid, bid, ask = bar.mid, bar.bid, bar.ask
        self.data[:, end] = (mid.open, mid.high, mid.low, mid.close, bid.open, bid.high, bid.low, bid.close,
                             ask.open, ask.high, ask.low, ask.close)  # in _ROWS order, in one numpy call
        if self.length == self.depth:
            self.offset += 1
        else:
            self.length += 1

    def series(self, field_name: str, price: str) -> np.ndarray:
        return self._readonly[_ROWS[(price, field_name)], self.offset:self.offset + self.length]


class CandleBook:
    """Closed candles (bounded, oldest first) and the latest factors per timeframe.

    A candle whose start is not after the last one kept is ignored: a resumed stream
    may repeat the tail of the warm-up history, and a decision must never see a candle twice.

    Two workers fed the same candles may share one book (the in-process backtest's EXIT and
    ENTRY): the second one's `add_bar` of the very candle the book holds last is taken without
    adding it again, and both decisions on it get the same view.
    """

    def __init__(self, instrument: str, depth: Mapping[str, int]) -> None:
        self.instrument = instrument
        self._bars = {tf: collections.deque(maxlen=max(1, n) + 1) for tf, n in depth.items()}
        self._columns = {tf: _Columns(max(1, n) + 1) for tf, n in depth.items()}
        self._read_columns = MappingProxyType(self._columns)
        self._factors: dict[str, dict[str, float]] = {tf: {} for tf in depth}
        self._factor_start: dict[str, datetime] = {}
        self._view: MarketView | None = None  # the last view, while no candle or factor has come since

    @property
    def timeframes(self) -> tuple[str, ...]:
        return tuple(self._bars)

    def add_bar(self, bar: Bar) -> bool:
        candles = self._bars.get(bar.timeframe)
        if candles is None or bar.instrument != self.instrument:
            return False
        if candles and bar.start <= candles[-1].start:
            # The same object, not an equal candle: a repeat from a stream is always a new one.
            return bar is candles[-1]
        candles.append(bar)
        self._columns[bar.timeframe].append(bar)
        self._view = None
        return True

    def set_factors(self, timeframe: str, candle_start: datetime, values: Mapping[str, float]) -> None:
        if timeframe in self._factors:
            self._factors[timeframe] = dict(values)
            self._factor_start[timeframe] = candle_start
            self._view = None

    def factors_start(self, timeframe: str) -> datetime | None:
        return self._factor_start.get(timeframe)

    def count(self, timeframe: str) -> int:
        return len(self._bars.get(timeframe, ()))

    def last(self, timeframe: str) -> Bar | None:
        candles = self._bars.get(timeframe)
        return candles[-1] if candles else None

    def view(self, now: datetime) -> MarketView:
        """What a decision at `now` sees; asked again at the same `now` with nothing new in the
        book (a shared book's second decision), the same view, with the price series it built."""
        view = self._view
        if view is None or view.now != now:
            view = self._view = MarketView(
                instrument=self.instrument,
                now=now,
                # Read-only all the way down: one view serves the EXIT and the ENTRY decision of a
                # shared book, and the book's own columns are behind it; a strategy that tried to
                # change what it was shown would fail here rather than change the other's input.
                bars=MappingProxyType({tf: tuple(candles) for tf, candles in self._bars.items()}),
                factors=MappingProxyType({tf: MappingProxyType(values) for tf, values in self._factors.items()}),
                columns=self._read_columns,
            )
        return view
