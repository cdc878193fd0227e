"""Latest indicator values: the published factor when market data has it, else from candles.

Strategies prefer the factor stream (one computation for the whole mesh) but must still work
from candles alone, e.g. in a fast backtest without a factor cache or with a custom period.
"""

from __future__ import annotations

import talib

from services.strategies.sdk import MarketView


def latest_rsi(view: MarketView, tf: str, period: int) -> float | None:
    published = view.factor(tf, f"rsi_{period}")
    if published is not None:
        return published
    closes = view.closes(tf)
    if len(closes) < period + 1:
        return None
    return float(talib.RSI(closes, period)[-1])


def latest_atr(view: MarketView, tf: str, period: int) -> float | None:
    published = view.factor(tf, f"atr_{period}")
    if published is not None:
        return published
    closes = view.closes(tf)
    if len(closes) < period + 1:
        return None
    return float(talib.ATR(view.prices(tf, "high"), view.prices(tf, "low"), closes, period)[-1])


def latest_ema(view: MarketView, tf: str, period: int) -> float | None:
    published = view.factor(tf, f"ema_{period}")
    if published is not None:
        return published
    closes = view.closes(tf)
    if len(closes) < period:
        return None
    return float(talib.EMA(closes, period)[-1])


def latest_adx(view: MarketView, tf: str, period: int) -> float | None:
    published = view.factor(tf, f"adx_{period}")
    if published is not None:
        return published
    closes = view.closes(tf)
    if len(closes) < 2 * period + 1:
        return None
    return float(talib.ADX(view.prices(tf, "high"), view.prices(tf, "low"), closes, period)[-1])
