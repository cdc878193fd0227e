"""Indicators for the catalogue, computed so that ties are decided by the rule, not by float noise.

Two kinds, each with a promise:

* Sums and averages (SMA, Bollinger) are exact. Candle prices are doubles; they are snapped
  to half a price quantum (1/200 pip: a mid close is (bid + ask) / 2, so it can end in half a
  quantum) and summed as integers. Two averages compare exactly (fast_sum * slow_n against
  slow_sum * fast_n), so "SMA10 equals SMA30" is a tie whatever the history or the order of
  the additions, where TA-Lib's running float sum answered +4.4e-16 on one bar and 0.0 on the
  next. The fast backtest uses the same functions over whole arrays.
* Recursive indicators (EMA, RSI, ATR, ADX, MACD) depend on where their series starts. They
  are computed with TA-Lib over exactly the last `window` candles (the strategy's
  warmup_bars), so a process holding more history decides the same. They are not read from
  the factor stream, whose engine holds a history of its own.
"""

from __future__ import annotations

import functools

import numpy as np
import talib

from services.strategies.sdk import MarketView


def once_per_view(compute):
    """For a strategy method `(self, view)`: computed once per view and params. A decision asks its
    indicators in decide_entry and again in exit_signal; the in-process backtest's EXIT and ENTRY
    workers share one view; the fast path asks about a long and a short at every candle. A view never
    changes, and the memo holds it, so `is` cannot mistake a new view for a collected one."""
    slot = f"_once_{compute.__name__}"

    @functools.wraps(compute)
    def once(self, view: MarketView):
        memo = getattr(self, slot, None)
        if memo is not None and memo[0] is view and memo[1] is self.params:
            return memo[2]
        value = compute(self, view)
        setattr(self, slot, (view, self.params, value))
        return value

    return once


def price_units(prices: np.ndarray, pip: float) -> np.ndarray:
    """Prices as integer counts of half a price quantum (pip / 200), exact for every real quote."""
    return np.rint(prices * (200.0 / pip)).astype(np.int64)


def price_unit(price: float, pip: float) -> int:
    """`price_units` of one price: the same product, and round() rounds half to even as np.rint does."""
    return round(price * (200.0 / pip))


def rolling_sums(units: np.ndarray, period: int) -> np.ndarray:
    """sums[i] = the exact sum of units[i - period + 1 .. i]; 0 where the window is short."""
    total = np.concatenate(([0], np.cumsum(units, dtype=np.int64)))
    out = np.zeros(len(units), dtype=np.int64)
    if len(units) >= period:
        out[period - 1:] = total[period:] - total[:-period]
    return out


def recent(view: MarketView, tf: str, window: int, field_name: str = "close") -> np.ndarray:
    """The last `window` mid prices of `tf` (all of them while fewer are held)."""
    return view.prices(tf, field_name)[-window:]


def latest_rsi(view: MarketView, tf: str, period: int, window: int) -> float | None:
    closes = recent(view, tf, window)
    if len(closes) < period + 1:
        return None
    return float(talib.RSI(closes, period)[-1])


def latest_atr(view: MarketView, tf: str, period: int, window: int) -> float | None:
    closes = recent(view, tf, window)
    if len(closes) < period + 1:
        return None
    return float(talib.ATR(recent(view, tf, window, "high"), recent(view, tf, window, "low"), closes, period)[-1])


def latest_ema(view: MarketView, tf: str, period: int, window: int) -> float | None:
    closes = recent(view, tf, window)
    if len(closes) < period:
        return None
    return float(talib.EMA(closes, period)[-1])


def latest_adx(view: MarketView, tf: str, period: int, window: int) -> float | None:
    closes = recent(view, tf, window)
    if len(closes) < 2 * period + 1:
        return None
    return float(talib.ADX(recent(view, tf, window, "high"), recent(view, tf, window, "low"), closes, period)[-1])
