"""rsi_threshold: RSI crossing back out of oversold/overbought on M1 mid closes.

Rule, on each closed M1 candle, with RSI(period) of mid closes on the previous and last
candle (both computed from candles, since a cross needs two points):
* buy  when RSI was below `oversold` and is now at or above it (crossed up through 30);
* sell when RSI was above `overbought` and is now at or below it (crossed down through 70).
Exit signal: a long closes once RSI >= `exit_level` (50), a short once RSI <= `exit_level`.
Ties: an RSI exactly at `oversold` now counts as crossed up (before < level <= now), one exactly
at it before does not; the mirror for `overbought`; exactly at `exit_level` exits. Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import talib

from services.strategies.catalogue._indicators import once_per_view, recent
from services.strategies.params import BaseParams, bounds, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class RsiThresholdParams(BaseParams):
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    exit_level: float = 50.0
    stop_loss_pips: Decimal = Decimal("12")
    take_profit_pips: Decimal = Decimal("15")
    max_hold_minutes: int = 120
    # What the analysis plane may set while a worker runs.
    tunable = bounds(period=(2, 50), oversold=(5.0, 45.0), overbought=(55.0, 95.0), exit_level=(30.0, 70.0),
                     stop_loss_pips=(Decimal(2), Decimal(100)), take_profit_pips=(Decimal(2), Decimal(200)),
                     max_hold_minutes=(5, 1440))

    def validate(self) -> None:
        require(self.period >= 2, f"param 'period' must be at least 2, got {self.period}")
        require(
            0 < self.oversold < self.exit_level < self.overbought < 100,
            "params must satisfy 0 < 'oversold' < 'exit_level' < 'overbought' < 100, got "
            f"{self.oversold}, {self.exit_level}, {self.overbought}",
        )


class RsiThreshold(Strategy):
    slug = "rsi_threshold"
    Params = RsiThresholdParams
    timeframes = ("M1",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    @once_per_view
    def _rsi(self, view: MarketView) -> tuple[float, float] | None:
        closes = recent(view, "M1", self.params.warmup_bars)
        if len(closes) < self.params.period + 2:
            return None
        rsi = talib.RSI(closes, self.params.period)
        return rsi[-2], rsi[-1]

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        rsi = self._rsi(view)
        if rsi is None:
            return None
        before, now = rsi
        p = self.params
        if before < p.oversold <= now:
            return self.enter("buy", f"RSI({p.period}) crossed up through {p.oversold:g}: {before:.1f} -> {now:.1f}")
        if before > p.overbought >= now:
            return self.enter(
                "sell", f"RSI({p.period}) crossed down through {p.overbought:g}: {before:.1f} -> {now:.1f}"
            )
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        rsi = self._rsi(view)
        if rsi is None:
            return None
        now = rsi[1]
        level = self.params.exit_level
        if position.side == "long" and now >= level:
            return self.close(f"RSI back up to {now:.1f} (>= {level:g})")
        if position.side == "short" and now <= level:
            return self.close(f"RSI back down to {now:.1f} (<= {level:g})")
        return None
