"""squeeze_pulse_break: trade the first Bollinger breakout after a volatility squeeze, on M5.

Rule, on each closed M5 candle (mid prices):
* Bollinger = SMA(period) +- bb_deviations * std of closes; Keltner = EMA(period) +-
  keltner_atr * ATR(period);
* a candle is "in squeeze" when the Bollinger band lies inside the Keltner channel
  (bb upper < kc upper and bb lower > kc lower);
* a squeeze counts when at least `min_squeeze_bars` consecutive candles were in squeeze, the
  last of them at most `release_window` candles before the last candle;
* enter on the first candle after that squeeze whose close is outside its Bollinger band:
  close > upper -> buy, close < lower -> sell; a later breakout of the same squeeze is ignored.
Ties: a band touching the channel is no squeeze (strictly inside); a close exactly on its band is
not outside it. Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import talib

from services.strategies.catalogue._indicators import recent
from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class SqueezePulseParams(BaseParams):
    period: int = 20
    bb_deviations: float = 2.0
    keltner_atr: float = 1.5
    min_squeeze_bars: int = 6
    release_window: int = 6
    stop_loss_pips: Decimal = Decimal("12")
    take_profit_pips: Decimal = Decimal("24")
    max_hold_minutes: int = 240

    def validate(self) -> None:
        require(self.period >= 2, f"param 'period' must be at least 2, got {self.period}")
        require(self.bb_deviations > 0, f"param 'bb_deviations' must be positive, got {self.bb_deviations}")
        require(self.keltner_atr > 0, f"param 'keltner_atr' must be positive, got {self.keltner_atr}")
        require(self.min_squeeze_bars >= 1, f"param 'min_squeeze_bars' must be at least 1, got {self.min_squeeze_bars}")
        require(self.release_window >= 1, f"param 'release_window' must be at least 1, got {self.release_window}")


class SqueezePulseBreak(Strategy):
    slug = "squeeze_pulse_break"
    Params = SqueezePulseParams
    timeframes = ("M5",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        closes = recent(view, "M5", p.warmup_bars)
        if len(closes) < p.period + p.min_squeeze_bars + p.release_window + 1:
            return None
        highs, lows = recent(view, "M5", p.warmup_bars, "high"), recent(view, "M5", p.warmup_bars, "low")
        bb_upper, _, bb_lower = talib.BBANDS(closes, p.period, p.bb_deviations, p.bb_deviations)
        kc_middle = talib.EMA(closes, p.period)
        atr = talib.ATR(highs, lows, closes, p.period)
        squeeze = (bb_upper < kc_middle + p.keltner_atr * atr) & (bb_lower > kc_middle - p.keltner_atr * atr)
        outside = (closes > bb_upper) | (closes < bb_lower)  # NaN compares False: warm-up is neither
        last = len(closes) - 1
        # Walk back from the previous candle to the squeeze's last candle; every candle on the
        # way (that one included: a breakout candle can still read as squeezed) must have
        # closed inside its band, or the last candle is not the first breakout.
        for end in range(last - 1, last - 1 - p.release_window, -1):
            if outside[end]:
                return None
            if np.all(squeeze[end - p.min_squeeze_bars + 1 : end + 1]):
                break
        else:
            return None
        if closes[last] > bb_upper[last]:
            return self.enter("buy", f"M5 close above the Bollinger band after a {p.min_squeeze_bars}+ candle squeeze")
        if closes[last] < bb_lower[last]:
            return self.enter("sell", f"M5 close below the Bollinger band after a {p.min_squeeze_bars}+ candle squeeze")
        return None
