"""impulse_retest_s5: enter on the first retest of an S5 impulse candle's midpoint.

Rule, on each closed S5 candle (all prices mid):
* an impulse candle is one of the `retest_bars` candles before the last whose range
  (high - low) >= impulse_k * the mean range of the `average_bars` candles before it, and
  whose close != open (its direction); the most recent such candle is used;
* its midpoint = (high + low) / 2;
* a bullish impulse is retested when the last candle's low <= midpoint and its close > midpoint
  -> buy; a bearish one when the last candle's high >= midpoint and close < midpoint -> sell;
* only the first touch counts: no candle between the impulse and the last one touched the
  midpoint.
Ties: a range exactly impulse_k times the average is an impulse (>=); close == open has no
direction; a low (high) exactly at the midpoint touches it, a close exactly at it is not past it.
Reads only the last average_bars + retest_bars + 1 candles.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from services.strategies.params import BaseParams, require
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpulseRetestParams(BaseParams):
    average_bars: int = 20
    impulse_k: float = 3.0
    retest_bars: int = 6
    stop_loss_pips: Decimal = Decimal("5")
    take_profit_pips: Decimal = Decimal("6")
    max_hold_minutes: int = 15
    warmup_bars: int = 60

    def validate(self) -> None:
        require(self.average_bars >= 1, f"param 'average_bars' must be at least 1, got {self.average_bars}")
        require(self.impulse_k > 1, f"param 'impulse_k' must be above 1, got {self.impulse_k}")
        require(self.retest_bars >= 1, f"param 'retest_bars' must be at least 1, got {self.retest_bars}")


class ImpulseRetestS5(Strategy):
    slug = "impulse_retest_s5"
    Params = ImpulseRetestParams
    timeframes = ("S5",)

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        bars = view.bars.get("S5", ())
        if len(bars) < p.average_bars + 2:
            return None
        highs, lows = view.prices("S5", "high"), view.prices("S5", "low")
        ranges = highs - lows
        last = len(bars) - 1
        for i in range(last - 1, max(p.average_bars, last - p.retest_bars) - 1, -1):
            average = float(np.mean(ranges[i - p.average_bars : i]))
            impulse = bars[i].mid
            if average <= 0 or ranges[i] < p.impulse_k * average or impulse.close == impulse.open:
                continue
            midpoint = (impulse.high + impulse.low) / 2
            bullish = impulse.close > impulse.open
            between = slice(i + 1, last)
            # A retest is the first trade back to the midpoint; a later one is stale.
            if bullish and bool(np.any(lows[between] <= midpoint)):
                return None
            if not bullish and bool(np.any(highs[between] >= midpoint)):
                return None
            now = bars[last].mid
            if bullish and now.low <= midpoint < now.close:
                return self.enter("buy", f"first retest of bullish S5 impulse midpoint {midpoint:.5f}")
            if not bullish and now.high >= midpoint > now.close:
                return self.enter("sell", f"first retest of bearish S5 impulse midpoint {midpoint:.5f}")
            return None
        return None
