"""micro_adaptive_revert: M1 mean reversion in a range, with a volatility-adaptive stretch.

Rule, on each closed M1 candle (mid prices):
* z = (close - SMA(mean_period)) / population std(mean_period) of closes;
* regime = the share of the last `regime_bars` ATR(atr_period) values that are <= the current
  ATR (a percentile rank in [0, 1]);
* threshold = z_base + z_adapt * regime: a stretch must be larger when volatility is high;
* only in a range: ADX(adx_period) < adx_max (from candles);
* buy when z <= -threshold, sell when z >= threshold.
Exit signal: a long closes once z >= 0 (back at the mean), a short once z <= 0.
Ties: z exactly at the threshold enters (<= / >=); ADX exactly at adx_max is not a range; an ATR
equal to the current one counts in the regime's rank. Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import talib

from services.strategies.catalogue._indicators import latest_adx, once_per_view, recent
from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class AdaptiveRevertParams(BaseParams):
    mean_period: int = 20
    atr_period: int = 14
    regime_bars: int = 100
    z_base: float = 1.5
    z_adapt: float = 1.0
    adx_period: int = 14
    adx_max: float = 25.0
    stop_loss_pips: Decimal = Decimal("10")
    take_profit_pips: Decimal = Decimal("10")
    max_hold_minutes: int = 60

    def validate(self) -> None:
        require(self.mean_period >= 2, f"param 'mean_period' must be at least 2, got {self.mean_period}")
        require(self.atr_period >= 1, f"param 'atr_period' must be at least 1, got {self.atr_period}")
        require(self.regime_bars >= 2, f"param 'regime_bars' must be at least 2, got {self.regime_bars}")
        require(self.z_base > 0, f"param 'z_base' must be positive, got {self.z_base}")
        require(self.z_adapt >= 0, f"param 'z_adapt' must not be negative, got {self.z_adapt}")
        require(self.adx_period >= 2, f"param 'adx_period' must be at least 2, got {self.adx_period}")
        require(0 < self.adx_max <= 100, f"param 'adx_max' must be in (0, 100], got {self.adx_max}")
        require(
            self.warmup_bars >= self.regime_bars + self.atr_period,
            f"param 'warmup_bars' ({self.warmup_bars}) must cover 'regime_bars' + 'atr_period' "
            f"({self.regime_bars + self.atr_period})",
        )


class MicroAdaptiveRevert(Strategy):
    slug = "micro_adaptive_revert"
    Params = AdaptiveRevertParams
    timeframes = ("M1",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    @once_per_view
    def _z(self, view: MarketView) -> float | None:
        closes = view.closes("M1")[-self.params.mean_period :]
        if len(closes) < self.params.mean_period:
            return None
        std = float(closes.std())
        if std == 0:
            return None
        return float((closes[-1] - closes.mean()) / std)

    def _threshold(self, view: MarketView) -> float | None:
        p = self.params
        closes = recent(view, "M1", p.warmup_bars)
        if len(closes) < p.atr_period + p.regime_bars:
            return None
        atr = talib.ATR(recent(view, "M1", p.warmup_bars, "high"), recent(view, "M1", p.warmup_bars, "low"), closes,
                        p.atr_period)[-p.regime_bars :]
        regime = float(np.mean(atr <= atr[-1]))
        return p.z_base + p.z_adapt * regime

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        z, threshold = self._z(view), self._threshold(view)
        adx = latest_adx(view, "M1", p.adx_period, p.warmup_bars)
        if z is None or threshold is None or adx is None or adx >= p.adx_max:
            return None
        if z <= -threshold:
            return self.enter("buy", f"M1 z-score {z:.2f} <= -{threshold:.2f} in a range (ADX {adx:.1f})")
        if z >= threshold:
            return self.enter("sell", f"M1 z-score {z:.2f} >= {threshold:.2f} in a range (ADX {adx:.1f})")
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        z = self._z(view)
        if z is None:
            return None
        if position.side == "long" and z >= 0:
            return self.close(f"M1 close back at its mean (z {z:.2f})")
        if position.side == "short" and z <= 0:
            return self.close(f"M1 close back at its mean (z {z:.2f})")
        return None
