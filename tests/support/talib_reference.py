"""The default factor set computed by batch TA-Lib on whole series: the independent reference the
plane's incremental factor engine is checked against. Written out by hand, so it shares no code
with services/market_data/factors.py."""

from __future__ import annotations

import numpy as np
import talib


def talib_reference(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> dict[str, np.ndarray]:
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    return {"rsi_14": talib.RSI(close, 14), "macd_12_26_9": macd, "macd_signal_12_26_9": signal,
            "macd_hist_12_26_9": hist, "atr_14": talib.ATR(high, low, close, 14), "bb_upper_20_2": upper,
            "bb_middle_20_2": middle, "bb_lower_20_2": lower, "adx_14": talib.ADX(high, low, close, 14),
            "ema_20": talib.EMA(close, 20), "ema_50": talib.EMA(close, 50), "sma_20": talib.SMA(close, 20),
            "sma_50": talib.SMA(close, 50)}
