"""ma_cross: fast/slow SMA crossover on M1 mid closes.

Rule, on each closed candle of the decision timeframe (M1 unless a backtest or deployment
derives it onto another one with `sdk.on_timeframe`): fast = SMA(fast_period) and slow = SMA(slow_period) of mid
closes, evaluated on the last candle and the one before it.
* buy  when fast <= slow on the previous candle and fast > slow on the last one;
* sell when fast >= slow on the previous candle and fast < slow on the last one.
Exit signal: a long closes once fast < slow (the opposite cross has happened), a short once
fast > slow. Checking the state rather than the single crossing candle means an exit worker
that missed that candle still closes the position.
Both points of the crossing are computed from candles: the factor stream carries only the
latest value, and mixing it with a recomputed previous value could invent a cross.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import talib

from services.strategies.params import BaseParams, require
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class MaCrossParams(BaseParams):
    fast_period: int = 10
    slow_period: int = 30
    stop_loss_pips: Decimal = Decimal("10")
    take_profit_pips: Decimal = Decimal("20")
    max_hold_minutes: int = 240

    def validate(self) -> None:
        require(self.fast_period >= 1, f"param 'fast_period' must be at least 1, got {self.fast_period}")
        require(
            self.fast_period < self.slow_period,
            f"param 'fast_period' ({self.fast_period}) must be below 'slow_period' ({self.slow_period})",
        )


class MaCross(Strategy):
    slug = "ma_cross"
    Params = MaCrossParams
    timeframes = ("M1",)

    def _averages(self, view: MarketView) -> tuple[float, float, float, float] | None:
        p = self.params
        closes = view.closes(self.decision_timeframe)
        if len(closes) < p.slow_period + 1:
            return None
        fast = talib.SMA(closes, p.fast_period)
        slow = talib.SMA(closes, p.slow_period)
        return fast[-2], slow[-2], fast[-1], slow[-1]

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        averages = self._averages(view)
        if averages is None:
            return None
        fast_before, slow_before, fast_now, slow_now = averages
        p = self.params
        if fast_before <= slow_before and fast_now > slow_now:
            return self.enter("buy", f"SMA({p.fast_period}) crossed above SMA({p.slow_period}) on {self.decision_timeframe}")
        if fast_before >= slow_before and fast_now < slow_now:
            return self.enter("sell", f"SMA({p.fast_period}) crossed below SMA({p.slow_period}) on {self.decision_timeframe}")
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        averages = self._averages(view)
        if averages is None:
            return None
        _, _, fast_now, slow_now = averages
        if position.side == "long" and fast_now < slow_now:
            return self.close(f"fast SMA below slow SMA on {self.decision_timeframe}: the opposite cross")
        if position.side == "short" and fast_now > slow_now:
            return self.close(f"fast SMA above slow SMA on {self.decision_timeframe}: the opposite cross")
        return None
