"""tick_imbalance: follow one-sided tick flow on S5 candles.

Rule, on each closed S5 candle, over the last `lookback` candles:
imbalance = sum(sign(mid close - mid open) * tick_count) / sum(tick_count)
(a doji counts zero). Only when sum(tick_count) >= min_ticks (a quiet tape says nothing):
* buy  when imbalance > threshold;
* sell when imbalance < -threshold.
Ties: an imbalance exactly at the threshold does not trade (strict); exactly min_ticks is enough.
Reads only the last `lookback` candles.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from services.strategies.params import BaseParams, require
from services.strategies.sdk import EntrySignal, MarketView, Strategy
from services.strategies.vector import CandleColumns, Signals, no_exit_signal


@dataclass(frozen=True, slots=True, kw_only=True)
class TickImbalanceParams(BaseParams):
    lookback: int = 12
    threshold: float = 0.6
    min_ticks: int = 30
    stop_loss_pips: Decimal = Decimal("4")
    take_profit_pips: Decimal = Decimal("4")
    max_hold_minutes: int = 10
    warmup_bars: int = 60

    def validate(self) -> None:
        require(self.lookback >= 1, f"param 'lookback' must be at least 1, got {self.lookback}")
        require(0 < self.threshold < 1, f"param 'threshold' must be between 0 and 1, got {self.threshold}")
        require(self.min_ticks >= 1, f"param 'min_ticks' must be at least 1, got {self.min_ticks}")


class TickImbalance(Strategy):
    slug = "tick_imbalance"
    Params = TickImbalanceParams
    timeframes = ("S5",)

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        bars = view.bars.get("S5", ())[-p.lookback :]
        if len(bars) < p.lookback:
            return None
        ticks = np.array([bar.tick_count for bar in bars], dtype=np.float64)
        total = ticks.sum()
        if total < p.min_ticks:
            return None
        direction = np.sign([bar.mid.close - bar.mid.open for bar in bars])
        imbalance = float((direction * ticks).sum() / total)
        if imbalance > p.threshold:
            return self.enter("buy", f"tick imbalance {imbalance:+.2f} over {int(total)} ticks > {p.threshold:g}")
        if imbalance < -p.threshold:
            return self.enter("sell", f"tick imbalance {imbalance:+.2f} over {int(total)} ticks < -{p.threshold:g}")
        return None

    def vector_rule(self) -> "TickImbalanceVector":
        return TickImbalanceVector(self.params)


class TickImbalanceVector:
    """The same rule over every candle at once. The sums are of whole numbers (signed tick
    counts), exact in floats in any order, so they equal the scalar rule's to the bit."""

    def __init__(self, params: TickImbalanceParams) -> None:
        self.params = params

    def signals(self, candles: CandleColumns) -> Signals:
        p = self.params
        ticks = candles.tick_count.astype(np.float64)
        signed = np.sign(candles.prices("close") - candles.prices("open")) * ticks
        total, flow = _window_sums(ticks, p.lookback), _window_sums(signed, p.lookback)
        ready = (np.arange(len(ticks)) >= p.lookback - 1) & (total >= p.min_ticks)
        imbalance = np.divide(flow, total, out=np.zeros_like(flow), where=total > 0)
        enter = np.where(ready & (imbalance > p.threshold), 1, np.where(ready & (imbalance < -p.threshold), -1, 0))
        exits = no_exit_signal(candles)
        return Signals(enter=enter.astype(np.int8), exit_long=exits, exit_short=exits)


def _window_sums(values: np.ndarray, period: int) -> np.ndarray:
    total = np.concatenate(([0.0], np.cumsum(values)))
    out = np.zeros(len(values))
    if len(values) >= period:
        out[period - 1:] = total[period:] - total[:-period]
    return out
