"""macd_rsi_div: RSI divergence at a new price extreme, timed by the MACD histogram, on M5.

Rule, on each closed M5 candle (mid closes; RSI(rsi_period), MACD(fast, slow, signal) computed
from candles because the rule needs their recent history, not one value):
* "recent" = the last `swing_bars` candles; "prior" = the `lookback` candles before them;
* bullish divergence: min close of recent < min close of prior (a lower low) while
  min RSI of recent > min RSI of prior (a higher low);
* the MACD histogram turns up: hist[-1] > hist[-2] <= hist[-3];
* buy on bullish divergence + histogram turning up. Mirror for sell: a higher high in price,
  a lower high in RSI, and the histogram turning down (hist[-1] < hist[-2] >= hist[-3]).
Ties: an equal low (high) is not a lower low (higher high); an equal RSI low is not a higher low;
the histogram turns up only on a strict rise after a bar not above the one before it. Indicators are computed over exactly the last warmup_bars candles, so more history never changes a decision.
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import talib

from services.strategies.params import BaseParams, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class MacdRsiDivParams(BaseParams):
    lookback: int = 20
    swing_bars: int = 5
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    stop_loss_pips: Decimal = Decimal("15")
    take_profit_pips: Decimal = Decimal("25")
    max_hold_minutes: int = 480

    def validate(self) -> None:
        require(self.lookback >= 2, f"param 'lookback' must be at least 2, got {self.lookback}")
        require(self.swing_bars >= 3, f"param 'swing_bars' must be at least 3, got {self.swing_bars}")
        require(self.rsi_period >= 2, f"param 'rsi_period' must be at least 2, got {self.rsi_period}")
        require(
            1 <= self.macd_fast < self.macd_slow,
            f"param 'macd_fast' ({self.macd_fast}) must be at least 1 and below 'macd_slow' ({self.macd_slow})",
        )
        require(self.macd_signal >= 1, f"param 'macd_signal' must be at least 1, got {self.macd_signal}")


class MacdRsiDiv(Strategy):
    slug = "macd_rsi_div"
    Params = MacdRsiDivParams
    timeframes = ("M5",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        closes = view.closes("M5")[-p.warmup_bars:]
        window = p.lookback + p.swing_bars
        if len(closes) < max(p.macd_slow + p.macd_signal + 2, p.rsi_period + 1 + window):
            return None
        rsi = talib.RSI(closes, p.rsi_period)
        hist = talib.MACD(closes, p.macd_fast, p.macd_slow, p.macd_signal)[2]
        recent, prior = slice(-p.swing_bars, None), slice(-window, -p.swing_bars)
        if np.isnan(rsi[-window:]).any() or np.isnan(hist[-3:]).any():
            return None
        turns_up = hist[-1] > hist[-2] <= hist[-3]
        turns_down = hist[-1] < hist[-2] >= hist[-3]
        if closes[recent].min() < closes[prior].min() and rsi[recent].min() > rsi[prior].min() and turns_up:
            return self.enter("buy", "bullish RSI divergence at a lower M5 low; MACD histogram turned up")
        if closes[recent].max() > closes[prior].max() and rsi[recent].max() < rsi[prior].max() and turns_down:
            return self.enter("sell", "bearish RSI divergence at a higher M5 high; MACD histogram turned down")
        return None
