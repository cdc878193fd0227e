"""bollinger_touch: fade a close on or beyond a Bollinger band on M5.

Rule, on each closed M5 candle: Bollinger(period, deviations) of mid closes, read from the
factors "bb_upper_20_2"/"bb_middle_20_2"/"bb_lower_20_2" when the params match a factor the
market data plane publishes, else computed from candles (SMA +- deviations * population std).
* buy  when the last mid close <= lower band;
* sell when the last mid close >= upper band.
Exit signal: a long closes once the mid close >= middle band, a short once it is <= middle.
Note: the rule is a level, so it answers "buy" on every candle that closes below the band;
the order plane's per-strategy position limit is what stops the stacking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import talib

from services.strategies.params import BaseParams, require
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class BollingerTouchParams(BaseParams):
    period: int = 20
    deviations: float = 2.0
    stop_loss_pips: Decimal = Decimal("15")
    take_profit_pips: Decimal = Decimal("20")
    max_hold_minutes: int = 360

    def validate(self) -> None:
        require(self.period >= 2, f"param 'period' must be at least 2, got {self.period}")
        require(self.deviations > 0, f"param 'deviations' must be positive, got {self.deviations}")


class BollingerTouch(Strategy):
    slug = "bollinger_touch"
    Params = BollingerTouchParams
    timeframes = ("M5",)

    def _bands(self, view: MarketView) -> tuple[float, float, float] | None:
        """(upper, middle, lower) on the last M5 candle, or None while warming up."""
        p = self.params
        suffix = f"{p.period}_{p.deviations:g}"
        names = (f"bb_upper_{suffix}", f"bb_middle_{suffix}", f"bb_lower_{suffix}")
        published = [view.factor("M5", name) for name in names]
        if all(value is not None for value in published):
            return published[0], published[1], published[2]
        closes = view.closes("M5")
        if len(closes) < p.period:
            return None
        upper, middle, lower = talib.BBANDS(closes, p.period, p.deviations, p.deviations)
        return upper[-1], middle[-1], lower[-1]

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        bands = self._bands(view)
        last = view.last("M5")
        if bands is None or last is None:
            return None
        upper, _, lower = bands
        close = last.mid.close
        if close <= lower:
            return self.enter("buy", f"M5 close {close} at or below lower band {lower:.5f}")
        if close >= upper:
            return self.enter("sell", f"M5 close {close} at or above upper band {upper:.5f}")
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        bands = self._bands(view)
        last = view.last("M5")
        if bands is None or last is None:
            return None
        middle = bands[1]
        close = last.mid.close
        if position.side == "long" and close >= middle:
            return self.close(f"M5 close {close} back at the middle band {middle:.5f}")
        if position.side == "short" and close <= middle:
            return self.close(f"M5 close {close} back at the middle band {middle:.5f}")
        return None
