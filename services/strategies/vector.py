"""A strategy's rule over whole arrays, for the fast research backtest.

A strategy that can say, for every candle of a backtest at once, what `decide_entry` and its
own `exit_signal` would answer there returns a `VectorRule` from `Strategy.vector_rule()`.
The fast backtest (services/backtest/fast.py) adds the desks' rules (exits before entries,
no adding to a position), the protective exits and the paper venue's fill rule, and runs its
loop only at candles where one of those can change the position. The answers must be the
scalar rule's, candle for candle: tests/unit/backtest/test_fast_parity.py runs both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


class NotVectorizable(Exception):
    """This run cannot be made on the fast path; the message says why (the event path can)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleColumns:
    """Closed candles of the decision timeframe over a whole backtest, oldest first.

    `prices(field, side)` are float64 exactly as the candle aggregator computes them (mid is
    (bid + ask) / 2 of each tick, in floats); `start_us` and `end_us` are microseconds since
    the epoch (UTC); `tick_count` per candle.
    """

    start_us: np.ndarray
    end_us: np.ndarray
    tick_count: np.ndarray
    # (side, field) -> float64 array, built on first use: a rule that reads mid closes only
    # never pays for the highs and lows of three sides.
    build: Callable[[str, str], np.ndarray]
    # The rest of what the aggregator gives a candle, for a rule that hands strategies whole Bars
    # (services/strategies/per_candle.py): the volumes as floats (built on first use, like the prices:
    # a rule over arrays never reads them), and the time of the closing tick.
    volumes: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    closed_us: np.ndarray | None = None
    # The index of the tick that closed each candle, and the candles of another timeframe over the same
    # ticks: a rule reading several timeframes hands them to the book in the order they closed.
    closed_tick: np.ndarray | None = None
    timeframe: Callable[[str], "CandleColumns"] | None = field(default=None, repr=False)
    _built: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.start_us)

    def volume(self) -> np.ndarray | None:
        """Each candle's volume as the aggregator gives it; None when these columns cannot say."""
        if self.volumes is None:
            return None
        values = self._built.get("volume")
        if values is None:
            values = self._built["volume"] = self.volumes()
        return values

    def prices(self, field_name: str = "close", price: str = "mid") -> np.ndarray:
        key = (price, field_name)
        values = self._built.get(key)
        if values is None:
            values = self._built[key] = self.build(price, field_name)
        return values


@dataclass(frozen=True, slots=True, kw_only=True)
class Signals:
    """Per candle: `enter` is +1 (buy), -1 (sell) or 0, what decide_entry answers on that candle
    (before is_active, which the fast backtest applies); `exit_long` / `exit_short` are what
    exit_signal answers for a long / a short position there."""

    enter: np.ndarray
    exit_long: np.ndarray
    exit_short: np.ndarray


class VectorRule(Protocol):
    def signals(self, candles: CandleColumns) -> Signals: ...


def no_exit_signal(candles: CandleColumns) -> np.ndarray:
    """For a strategy whose only exits are the protective ones."""
    return np.zeros(len(candles), dtype=bool)
