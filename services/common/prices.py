"""One side's open, high, low and close: the record the market-data plane builds candles of and
strategies read bars of.

Written once, so a candle becomes a bar without copying its three sides (the in-process
backtest hands the aggregator's own Ohlc records to the strategy), and no plane imports
another's to share it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ohlc:
    open: float
    high: float
    low: float
    close: float


__all__ = ["Ohlc"]
