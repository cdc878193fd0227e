"""A vector rule for a strategy whose indicators are not one pass over the whole series.

The catalogue computes its indicators over exactly the last `warmup_bars` candles (so more
history never changes a decision): an EMA or an RSI seeded afresh in every window is not a
column computed once, and rewriting TA-Lib window by window, bit for bit, is where a fast path
and the live worker would part. `PerCandle` instead asks the strategy's own scalar code, at
every candle of the decision timeframe, on the very view the live worker would hold there: the
candles go through the worker's `CandleBook` (same depth, same read-only view at the candle's
end), built from the columns with every field the aggregator gives a candle. What it leaves out
is everything else the event path does per bar (ticks, the order engine, the ledger, the two
workers' bookkeeping), so a month of M1 candles takes the strategy's own time and little more
(about 3 to 4 times faster than the event path, `bench/per_candle.py`), and the fast backtest's loop
and fill rules do the rest.

A strategy opts in (`vector_rule = per_candle` in its class) when its answers depend only on
the view and, for its own `exit_signal`, on the position's side: the fast backtest holds one
position of `units` at a time and asks about a long and a short at every candle. The parity
test (tests/unit/backtest/test_fast_parity.py) proves each opted-in strategy against the event
path. A strategy reading several timeframes gets their candles in the order they closed. Not for a
strategy that reads factors (NotVectorizable says so).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np

from services.strategies.book import CandleBook
from services.strategies.sdk import TIMEFRAMES, Bar, MarketView, Ohlc, OpenPosition, Strategy, StrategyHarness
from services.strategies.vector import CandleColumns, NotVectorizable, Signals

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SIDES = ("bid", "ask", "mid")
_FIELDS = ("open", "high", "low", "close")


class PerCandle:
    """The strategy's scalar rule at every candle, on the view its live worker would hold."""

    def __init__(self, strategy: Strategy) -> None:
        if strategy.factor_specs():
            raise NotVectorizable(f"{strategy.slug} reads factors ({strategy.factor_specs()}); "
                                  "it runs on the event path")
        self.strategy = strategy
        # The live worker's harness: an exception or a malformed answer is no signal, logged and counted alike.
        self.harness = StrategyHarness(strategy, logging.getLogger(f"strategy.{strategy.slug}.fast"))
        # Only a strategy with an exit rule of its own is asked about positions: the others answer None.
        self.exits = type(strategy).exit_signal is not Strategy.exit_signal

    def signals(self, candles: CandleColumns) -> Signals:
        strategy, n = self.strategy, len(candles)
        p = strategy.params
        enter, exit_long, exit_short = np.zeros(n, np.int8), np.zeros(n, bool), np.zeros(n, bool)
        book = CandleBook(p.instrument, strategy.history_bars())
        # Positions of `units` opened at the epoch at price 0: an opted-in rule reads only their side (the
        # parity test would show one that read more).
        opened = _EPOCH
        long = OpenPosition(instrument=p.instrument, quantity=p.units, average_price=Decimal(0), opened_time=opened)
        short = OpenPosition(instrument=p.instrument, quantity=-p.units, average_price=Decimal(0), opened_time=opened)
        for i, bar in _in_closing_order(candles, strategy, book):
            view = book.view(now=bar.end)
            entry = self.harness.entry_signal(view)
            if entry is not None:
                enter[i] = 1 if entry.side == "buy" else -1
            if self.exits:
                exit_long[i] = self._exit(view, long)
                exit_short[i] = self._exit(view, short)
        return Signals(enter=enter, exit_long=exit_long, exit_short=exit_short)

    def _exit(self, view: MarketView, position: OpenPosition) -> bool:
        signal = self.harness.exit_signal(view, position)
        if signal is None:
            return False
        if signal.quantity is not None and signal.quantity != abs(position.quantity):
            raise NotVectorizable(f"{self.strategy.slug} closes part of a position ({signal.quantity} of "
                                  f"{abs(position.quantity)}); the fast backtest holds whole positions only")
        return True


def per_candle(strategy: Strategy) -> PerCandle:
    """A strategy's `vector_rule` when it opts in: `vector_rule = per_candle` in its class."""
    return PerCandle(strategy)


def _in_closing_order(candles: CandleColumns, strategy: Strategy, book: CandleBook):
    """Adds every timeframe's candles to the book in the order the live aggregator hands them to the
    worker (by the tick that closed them, the finest first among those one tick closed), and yields
    each decision candle with its index once it is in: a coarser candle the same tick closed comes
    after the decision, as it does live, where a strategy that reads no factors decides at once."""
    instrument, decision = strategy.params.instrument, strategy.decision_timeframe
    if len(strategy.timeframes) == 1:
        for i, bar in enumerate(_bars(candles, instrument, decision)):
            book.add_bar(bar)
            yield i, bar
        return
    if candles.timeframe is None or candles.closed_tick is None:
        raise NotVectorizable(f"{strategy.slug} reads {', '.join(strategy.timeframes)}, and these candle "
                              "columns carry only one timeframe")
    frames = [(tf, candles if tf == decision else candles.timeframe(tf)) for tf in strategy.timeframes]
    order = sorted(((tick, TIMEFRAMES.index(tf), k, i) for k, (tf, cols) in enumerate(frames)
                    for i, tick in enumerate(cols.closed_tick.tolist())))
    bars = [_bars(cols, instrument, tf) for tf, cols in frames]
    for _, _, k, i in order:
        bar = next(bars[k])
        book.add_bar(bar)
        if k == 0:
            yield i, bar


def _bars(candles: CandleColumns, instrument: str, timeframe: str):
    """The columns' candles as the Bars a worker is handed (every field the aggregator sets)."""
    volumes = candles.volume()
    if volumes is None or candles.closed_us is None:
        raise NotVectorizable("these candle columns carry no volume or closing time; a strategy may read them")
    prices = {(side, name): candles.prices(name, side).tolist() for side in _SIDES for name in _FIELDS}
    columns = [prices[(side, name)] for side in _SIDES for name in _FIELDS]
    times = [_times(candles.start_us), _times(candles.end_us), _times(candles.closed_us)]
    for (start, end, closed, count, volume, bo, bh, bl, bc, ao, ah, al, ac, mo, mh, ml, mc) in zip(
            *times, candles.tick_count.tolist(), volumes.tolist(), *columns):
        yield Bar(instrument=instrument, timeframe=timeframe, start=start, end=end,
                  bid=Ohlc(bo, bh, bl, bc), ask=Ohlc(ao, ah, al, ac), mid=Ohlc(mo, mh, ml, mc),
                  tick_count=count, volume=volume, closed_time=closed)


def _times(time_us: np.ndarray) -> list[datetime]:
    """Microseconds since the epoch as UTC datetimes: numpy makes the timedeltas, exact to the microsecond."""
    return list(map(_EPOCH.__add__, time_us.astype("timedelta64[us]").tolist()))


__all__ = ["PerCandle", "per_candle"]
