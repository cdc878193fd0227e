"""bollinger_touch: fade a close on or beyond a Bollinger band on M5.

Rule, on each closed M5 candle: Bollinger(period, deviations) of the last `period` mid closes,
middle = SMA, bands = middle +- deviations * population std.
* buy  when the last mid close <= lower band;
* sell when the last mid close >= upper band.
Exit signal: a long closes once the mid close >= middle band, a short once it is <= middle.
Ties: a close exactly on a band is a touch, exactly on the middle band exits. The sums are exact
(closes snapped to 1/200 pip, integers, see _indicators.py): with n = period, S = the sum and
Q = the sum of squares, close <= lower is n * close - S <= -deviations * sqrt(n * Q - S * S),
an integer against one correctly rounded square root, so every process and the fast backtest
decide a touch alike. Reads only the last `period` candles.
Note: the rule is a level, so it answers "buy" on every candle that closes below the band;
the order plane's per-strategy position limit is what stops the stacking.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import math

import numpy as np

from services.strategies.catalogue._indicators import price_units, rolling_sums
from services.strategies.params import BaseParams, bounds, require
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy
from services.strategies.vector import CandleColumns, NotVectorizable, Signals


@dataclass(frozen=True, slots=True, kw_only=True)
class BollingerTouchParams(BaseParams):
    period: int = 20
    deviations: float = 2.0
    stop_loss_pips: Decimal = Decimal("15")
    take_profit_pips: Decimal = Decimal("20")
    max_hold_minutes: int = 360
    # What the analysis plane may set while a worker runs.
    tunable = bounds(period=(5, 100), deviations=(1.0, 4.0), stop_loss_pips=(Decimal(2), Decimal(100)),
                     take_profit_pips=(Decimal(2), Decimal(200)), max_hold_minutes=(5, 1440))

    def validate(self) -> None:
        require(self.period >= 2, f"param 'period' must be at least 2, got {self.period}")
        require(self.deviations > 0, f"param 'deviations' must be positive, got {self.deviations}")


class BollingerTouch(Strategy):
    slug = "bollinger_touch"
    Params = BollingerTouchParams
    timeframes = ("M5",)

    def _position(self, view: MarketView) -> tuple[int, float, float] | None:
        """(n * close - S, deviations * sqrt(n * Q - S * S), close) on the last candle; None while warming up.

        The close is on or below the lower band when the first is <= -the second, on or above
        the upper band when it is >= the second, at or above the middle when it is >= 0.
        """
        p = self.params
        closes = view.closes("M5")[-p.period:]
        if len(closes) < p.period:
            return None
        units = [int(u) for u in price_units(closes, p.pip)]  # Python ints: exact for any price
        total, squares = sum(units), sum(u * u for u in units)
        return p.period * units[-1] - total, p.deviations * math.sqrt(p.period * squares - total * total), closes[-1]

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        found = self._position(view)
        if found is None:
            return None
        offset, width, close = found
        if offset <= -width:
            return self.enter("buy", f"M5 close {close} at or below the lower band")
        if offset >= width:
            return self.enter("sell", f"M5 close {close} at or above the upper band")
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        found = self._position(view)
        if found is None:
            return None
        offset, _, close = found
        if position.side == "long" and offset >= 0:
            return self.close(f"M5 close {close} back at the middle band")
        if position.side == "short" and offset <= 0:
            return self.close(f"M5 close {close} back at the middle band")
        return None

    def vector_rule(self) -> "BollingerVector":
        return BollingerVector(self.params)


class BollingerVector:
    """The same rule over every candle at once (the fast backtest), in int64 while that is exact."""

    def __init__(self, params: BollingerTouchParams) -> None:
        self.params = params

    def signals(self, candles: CandleColumns) -> Signals:
        p = self.params
        units = price_units(candles.prices("close"), p.pip)
        if len(units) and int(np.abs(units).max()) ** 2 * p.period ** 2 >= 2 ** 62:
            raise NotVectorizable("prices too large for exact int64 Bollinger sums; run the event path")
        total = rolling_sums(units, p.period)
        squares = rolling_sums(units * units, p.period)
        offset = p.period * units - total
        spread = p.period * squares - total * total
        if len(spread) and int(spread.max()) >= 2 ** 53:  # beyond it a float would round the integer
            raise NotVectorizable("Bollinger variance too large to convert exactly; run the event path")
        width = p.deviations * np.sqrt(spread.astype(np.float64))
        ready = np.arange(len(units)) >= p.period - 1
        enter = np.where(ready & (offset <= -width), 1, np.where(ready & (offset >= width), -1, 0))
        return Signals(enter=enter.astype(np.int8), exit_long=ready & (offset >= 0), exit_short=ready & (offset <= 0))
