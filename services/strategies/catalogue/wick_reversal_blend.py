"""wick_reversal_blend: buy a long lower wick at a local low when RSI is weak, on M1.

Rule, on each closed M1 candle (mid prices), with body = |close - open|:
* lower wick = min(open, close) - low; upper wick = high - max(open, close);
* buy  when lower wick >= wick_body_ratio * body, lower wick >= min_wick_pips, the candle's
  low <= the lowest low of the `local_bars` candles before it (a local low), and
  RSI(rsi_period) < rsi_buy_below (from candles);
* sell is the mirror: upper wick, a local high (high >= the highest high of the
  `local_bars` candles before), RSI > rsi_sell_above.
Ties: a wick exactly at wick_body_ratio * body or at min_wick_pips counts; a low equal to the
lowest low before is a local low (a high likewise); RSI exactly at a level does not pass (strict).
Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.strategies.catalogue._indicators import latest_rsi
from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class WickBlendParams(BaseParams):
    wick_body_ratio: float = 2.0
    min_wick_pips: float = 3.0
    local_bars: int = 10
    rsi_period: int = 14
    rsi_buy_below: float = 40.0
    rsi_sell_above: float = 60.0
    stop_loss_pips: Decimal = Decimal("8")
    take_profit_pips: Decimal = Decimal("12")
    max_hold_minutes: int = 60

    def validate(self) -> None:
        require(self.wick_body_ratio > 0, f"param 'wick_body_ratio' must be positive, got {self.wick_body_ratio}")
        require(self.min_wick_pips >= 0, f"param 'min_wick_pips' must not be negative, got {self.min_wick_pips}")
        require(self.local_bars >= 1, f"param 'local_bars' must be at least 1, got {self.local_bars}")
        require(self.rsi_period >= 2, f"param 'rsi_period' must be at least 2, got {self.rsi_period}")
        require(
            0 < self.rsi_buy_below <= self.rsi_sell_above < 100,
            f"params need 0 < 'rsi_buy_below' <= 'rsi_sell_above' < 100, got {self.rsi_buy_below}, {self.rsi_sell_above}",
        )


class WickReversalBlend(Strategy):
    slug = "wick_reversal_blend"
    Params = WickBlendParams
    timeframes = ("M1",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        bars = view.bars.get("M1", ())
        if len(bars) < p.local_bars + 1:
            return None
        candle = bars[-1].mid
        before = [bar.mid for bar in bars[-1 - p.local_bars : -1]]
        body = abs(candle.close - candle.open)
        lower_wick = min(candle.open, candle.close) - candle.low
        upper_wick = candle.high - max(candle.open, candle.close)
        min_wick = p.min_wick_pips * p.pip
        rsi = latest_rsi(view, "M1", p.rsi_period, p.warmup_bars)
        if rsi is None:
            return None
        if (
            lower_wick >= p.wick_body_ratio * body
            and lower_wick >= min_wick
            and candle.low <= min(c.low for c in before)
            and rsi < p.rsi_buy_below
        ):
            return self.enter("buy", f"M1 lower wick {lower_wick / p.pip:.1f} pips at a local low, RSI {rsi:.1f}")
        if (
            upper_wick >= p.wick_body_ratio * body
            and upper_wick >= min_wick
            and candle.high >= max(c.high for c in before)
            and rsi > p.rsi_sell_above
        ):
            return self.enter("sell", f"M1 upper wick {upper_wick / p.pip:.1f} pips at a local high, RSI {rsi:.1f}")
        return None
