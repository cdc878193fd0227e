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
