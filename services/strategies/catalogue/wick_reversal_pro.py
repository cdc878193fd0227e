"""wick_reversal_pro: an M5 wick rejection taken only in the direction of the EMA trend.

Rule, on each closed M5 candle (mid prices):
* trend slope = EMA(ema_period)[-1] - EMA(ema_period)[-1 - slope_bars] (from candles: a slope
  needs two points); up-trend when slope >= min_slope_pips, down-trend when <= -min_slope_pips;
* ATR = ATR(atr_period) (from candles);
* buy  in an up-trend when the lower wick >= wick_atr_ratio * ATR and >= wick_body_ratio * body
  (sellers were rejected below: enter against the wick, with the trend);
* sell in a down-trend on the mirror upper wick.
Ties: a slope exactly at min_slope_pips is a trend (>=); a wick exactly at its ATR or body
multiple counts (>=). Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
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
class WickProParams(BaseParams):
    ema_period: int = 50
    slope_bars: int = 5
    min_slope_pips: float = 1.0
    atr_period: int = 14
    wick_atr_ratio: float = 0.6
    wick_body_ratio: float = 1.5
    stop_loss_pips: Decimal = Decimal("15")
    take_profit_pips: Decimal = Decimal("25")
    max_hold_minutes: int = 480

    def validate(self) -> None:
        require(self.ema_period >= 2, f"param 'ema_period' must be at least 2, got {self.ema_period}")
        require(self.slope_bars >= 1, f"param 'slope_bars' must be at least 1, got {self.slope_bars}")
        require(self.min_slope_pips >= 0, f"param 'min_slope_pips' must not be negative, got {self.min_slope_pips}")
        require(self.atr_period >= 1, f"param 'atr_period' must be at least 1, got {self.atr_period}")
        require(self.wick_atr_ratio > 0, f"param 'wick_atr_ratio' must be positive, got {self.wick_atr_ratio}")
        require(self.wick_body_ratio > 0, f"param 'wick_body_ratio' must be positive, got {self.wick_body_ratio}")


class WickReversalPro(Strategy):
    slug = "wick_reversal_pro"
    Params = WickProParams
    timeframes = ("M5",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        closes = recent(view, "M5", p.warmup_bars)
        if len(closes) < max(p.ema_period + p.slope_bars, p.atr_period + 1):
            return None
        ema = talib.EMA(closes, p.ema_period)
        slope = ema[-1] - ema[-1 - p.slope_bars]
        atr = latest_atr(view, "M5", p.atr_period, p.warmup_bars)
        if atr is None or atr <= 0:
            return None
        candle = view.bars["M5"][-1].mid
        body = abs(candle.close - candle.open)
        lower_wick = min(candle.open, candle.close) - candle.low
        upper_wick = candle.high - max(candle.open, candle.close)
        min_slope = p.min_slope_pips * p.pip
        if slope >= min_slope and lower_wick >= p.wick_atr_ratio * atr and lower_wick >= p.wick_body_ratio * body:
            return self.enter(
                "buy", f"M5 lower-wick rejection {lower_wick / p.pip:.1f} pips (ATR {atr / p.pip:.1f}) in an EMA up-trend"
            )
        if slope <= -min_slope and upper_wick >= p.wick_atr_ratio * atr and upper_wick >= p.wick_body_ratio * body:
            return self.enter(
                "sell", f"M5 upper-wick rejection {upper_wick / p.pip:.1f} pips (ATR {atr / p.pip:.1f}) in an EMA down-trend"
            )
        return None
