"""m1scalper: buy a pullback to the fast EMA in an M1 EMA up-trend (mirror for sells).

Rule, on each closed M1 candle (mid prices; EMAs and ATR from candles):
* up-trend: EMA(fast) > EMA(slow) on the last candle and on the one before;
* pullback: the last candle's low <= EMA(fast) < its close (it dipped to the fast EMA and
  closed back above);
* ATR filter: min_atr_pips <= ATR(atr_period) <= max_atr_pips (enough movement to pay the
  spread, not a news spike);
* buy on up-trend + pullback + ATR filter; sell on the mirror (down-trend, high >= EMA(fast)
  > close).
Ties: equal EMAs are no trend; a low exactly at the fast EMA is a touch (<=) but a close exactly
at it is not back above (<); ATR exactly at either bound passes. Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import talib

from services.strategies.catalogue._indicators import latest_atr, recent
from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class M1ScalperParams(BaseParams):
    fast_period: int = 5
    slow_period: int = 20
    atr_period: int = 14
    min_atr_pips: float = 1.0
    max_atr_pips: float = 15.0
    stop_loss_pips: Decimal = Decimal("6")
    take_profit_pips: Decimal = Decimal("8")
    max_hold_minutes: int = 30

    def validate(self) -> None:
        require(self.fast_period >= 1, f"param 'fast_period' must be at least 1, got {self.fast_period}")
        require(
            self.fast_period < self.slow_period,
            f"param 'fast_period' ({self.fast_period}) must be below 'slow_period' ({self.slow_period})",
        )
        require(self.atr_period >= 1, f"param 'atr_period' must be at least 1, got {self.atr_period}")
        require(
            0 <= self.min_atr_pips < self.max_atr_pips,
            f"param 'min_atr_pips' ({self.min_atr_pips}) must be below 'max_atr_pips' ({self.max_atr_pips})",
        )


class M1Scalper(Strategy):
    slug = "m1scalper"
    Params = M1ScalperParams
    timeframes = ("M1",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        closes = recent(view, "M1", p.warmup_bars)
        if len(closes) < max(p.slow_period, p.atr_period) + 2:
            return None
        fast = talib.EMA(closes, p.fast_period)
        slow = talib.EMA(closes, p.slow_period)
        atr = latest_atr(view, "M1", p.atr_period, p.warmup_bars)
        if atr is None or not p.min_atr_pips * p.pip <= atr <= p.max_atr_pips * p.pip:
            return None
        candle = view.bars["M1"][-1].mid
        if fast[-1] > slow[-1] and fast[-2] > slow[-2] and candle.low <= fast[-1] < candle.close:
            return self.enter("buy", f"M1 pullback to EMA({p.fast_period}) in an up-trend, ATR {atr / p.pip:.1f} pips")
        if fast[-1] < slow[-1] and fast[-2] < slow[-2] and candle.high >= fast[-1] > candle.close:
            return self.enter("sell", f"M1 pullback to EMA({p.fast_period}) in a down-trend, ATR {atr / p.pip:.1f} pips")
        return None
