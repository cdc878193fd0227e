"""scalp_ping_5s: ride a 5-second momentum burst that clearly beats the spread.

Rule, on each closed S5 candle:
* spread = ask close - bid close of the last candle; no entry when spread > max_spread_pips
  (a wide quote eats the whole edge) or spread <= 0 (a locked or crossed quote is bad data);
* momentum = last mid close - mid close `lookback` candles earlier;
* enter when |momentum| > momentum_k * spread and |momentum| >= min_momentum_pips:
  buy when momentum > 0, sell when < 0.
Ties: a spread exactly at max_spread_pips still trades; momentum exactly momentum_k * spread does
not (it must beat it), exactly min_momentum_pips does. Reads only the last lookback + 1 candles.
Exits: protective only, and tight (3-pip stop, 2-pip target, 3-minute time stop by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from services.strategies.params import BaseParams, require
from services.strategies.sdk import EntrySignal, MarketView, Strategy
from services.strategies.vector import CandleColumns, Signals, no_exit_signal


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalpPingParams(BaseParams):
    lookback: int = 6
    momentum_k: float = 3.0
    min_momentum_pips: float = 0.5
    max_spread_pips: float = 0.8
    stop_loss_pips: Decimal = Decimal("3")
    take_profit_pips: Decimal = Decimal("2")
    max_hold_minutes: int = 3
    warmup_bars: int = 60

    def validate(self) -> None:
        require(self.lookback >= 1, f"param 'lookback' must be at least 1, got {self.lookback}")
        require(self.momentum_k > 0, f"param 'momentum_k' must be positive, got {self.momentum_k}")
        require(self.max_spread_pips > 0, f"param 'max_spread_pips' must be positive, got {self.max_spread_pips}")
        require(self.min_momentum_pips >= 0, f"param 'min_momentum_pips' must not be negative, got {self.min_momentum_pips}")


class ScalpPing5s(Strategy):
    slug = "scalp_ping_5s"
    Params = ScalpPingParams
    timeframes = ("S5",)

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        bars = view.bars.get("S5", ())
        if len(bars) < p.lookback + 1:
            return None
        spread = bars[-1].spread
        if spread <= 0 or spread > p.max_spread_pips * p.pip:
            return None
        momentum = bars[-1].mid.close - bars[-1 - p.lookback].mid.close
        if abs(momentum) <= p.momentum_k * spread or abs(momentum) < p.min_momentum_pips * p.pip:
            return None
        side = "buy" if momentum > 0 else "sell"
        return self.enter(
            side,
            f"S5 momentum {momentum / p.pip:+.1f} pips over {p.lookback} candles beats "
            f"{p.momentum_k:g} x spread {spread / p.pip:.1f} pips",
        )

    def vector_rule(self) -> "ScalpPingVector":
        return ScalpPingVector(self.params)


class ScalpPingVector:
    """The same rule over every candle at once: the same float operations, element by element."""

    def __init__(self, params: ScalpPingParams) -> None:
        self.params = params

    def signals(self, candles: CandleColumns) -> Signals:
        p = self.params
        spread = candles.prices("close", "ask") - candles.prices("close", "bid")
        closes = candles.prices("close")
        momentum = np.zeros(len(closes))
        momentum[p.lookback:] = closes[p.lookback:] - closes[:-p.lookback]
        ready = np.arange(len(closes)) >= p.lookback
        strong = (np.abs(momentum) > p.momentum_k * spread) & (np.abs(momentum) >= p.min_momentum_pips * p.pip)
        trades = ready & (spread > 0) & (spread <= p.max_spread_pips * p.pip) & strong
        enter = np.where(trades & (momentum > 0), 1, np.where(trades & (momentum < 0), -1, 0))
        exits = no_exit_signal(candles)
        return Signals(enter=enter.astype(np.int8), exit_long=exits, exit_short=exits)
