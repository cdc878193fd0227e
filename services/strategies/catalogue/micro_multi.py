"""micro_multi: H1 trend, M5 pullback, M1 momentum confirmation.

Rule, on each closed M1 candle (mid prices):
* H1 trend: up when the last H1 close > EMA(h1_ema_period) of H1 closes, down when below
  (from candles);
* M5 pullback: RSI(rsi_period) on M5 <= pullback_rsi in an up-trend, >= 100 - pullback_rsi in a
  down-trend (from candles);
* M1 confirmation: the last M1 close is beyond the close `momentum_bars` candles earlier in the
  trend direction and the last M1 candle itself closed in that direction (close vs open);
* buy when all three agree up, sell when all three agree down.
Ties: an H1 close equal to its EMA is no trend; RSI exactly at the pullback level counts; an M1
close equal to the earlier one (or to its open) confirms nothing. EMA and RSI are computed over
exactly the bars history_bars() names for their timeframe, so more history never changes a decision.
Exits: protective only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from services.strategies.catalogue._indicators import latest_ema, latest_rsi
from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class MicroMultiParams(BaseParams):
    h1_ema_period: int = 20
    rsi_period: int = 14
    pullback_rsi: float = 45.0
    momentum_bars: int = 3
    stop_loss_pips: Decimal = Decimal("10")
    take_profit_pips: Decimal = Decimal("15")
    max_hold_minutes: int = 120
    warmup_bars: int = 60

    def validate(self) -> None:
        require(self.h1_ema_period >= 2, f"param 'h1_ema_period' must be at least 2, got {self.h1_ema_period}")
        require(self.rsi_period >= 2, f"param 'rsi_period' must be at least 2, got {self.rsi_period}")
        require(0 < self.pullback_rsi < 50, f"param 'pullback_rsi' must be between 0 and 50, got {self.pullback_rsi}")
        require(self.momentum_bars >= 1, f"param 'momentum_bars' must be at least 1, got {self.momentum_bars}")


class MicroMulti(Strategy):
    slug = "micro_multi"
    Params = MicroMultiParams
    timeframes = ("M1", "M5", "H1")
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def history_bars(self) -> Mapping[str, int]:
        p = self.params
        # EMA and RSI settle after a few periods; load enough that they match the factor stream.
        return {"M1": self.warmup_bars(), "M5": 5 * p.rsi_period, "H1": 3 * p.h1_ema_period}

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        h1, m1 = view.last("H1"), view.bars.get("M1", ())
        if h1 is None or len(m1) < p.momentum_bars + 1:
            return None
        depth = self.history_bars()
        ema = latest_ema(view, "H1", p.h1_ema_period, depth["H1"])
        rsi = latest_rsi(view, "M5", p.rsi_period, depth["M5"])
        if ema is None or rsi is None:
            return None
        now, earlier = m1[-1].mid, m1[-1 - p.momentum_bars].mid
        if h1.mid.close > ema and rsi <= p.pullback_rsi and now.close > earlier.close and now.close > now.open:
            return self.enter("buy", f"H1 above EMA({p.h1_ema_period}), M5 RSI {rsi:.1f} pullback, M1 turning up")
        if h1.mid.close < ema and rsi >= 100 - p.pullback_rsi and now.close < earlier.close and now.close < now.open:
            return self.enter("sell", f"H1 below EMA({p.h1_ema_period}), M5 RSI {rsi:.1f} pullback, M1 turning down")
        return None
