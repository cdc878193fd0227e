"""Factors: TA-Lib indicators on each series' closed-candle mid prices.

A `FactorEngine` keeps, per (instrument, timeframe), a bounded history of closed mid
candles and recomputes every configured factor with talib on each close. Recomputing
on the whole history (rather than updating incrementally) is simple and gives exactly
what batch talib gives on the same series; with the default 1,000 candles the EMA-type
factors (EMA, MACD, RSI, ATR, ADX) have forgotten where the history starts, so they also
equal talib on the full series to double precision. A factor still in warm-up (NaN)
is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import talib

from services.market_data.candles import Candle
from services.market_data.instruments import Timeframe

DEFAULT_FACTORS = "rsi:14,macd:12:26:9,atr:14,bbands:20:2,adx:14,ema:20,ema:50,sma:20,sma:50"
DEFAULT_HISTORY = 1_000

# kind -> (number of parameters, parameter kinds)
_KINDS: dict[str, tuple[type, ...]] = {
    "rsi": (int,), "atr": (int,), "adx": (int,), "ema": (int,), "sma": (int,),
    "macd": (int, int, int), "bbands": (int, float),
}


@dataclass(frozen=True, slots=True)
class FactorSpec:
    kind: str
    params: tuple

    @property
    def label(self) -> str:
        return "_".join(_fmt(p) for p in self.params)

    @property
    def names(self) -> tuple[str, ...]:
        suffix = self.label
        if self.kind == "macd":
            return (f"macd_{suffix}", f"macd_signal_{suffix}", f"macd_hist_{suffix}")
        if self.kind == "bbands":
            return (f"bb_upper_{suffix}", f"bb_middle_{suffix}", f"bb_lower_{suffix}")
        return (f"{self.kind}_{suffix}",)

    def compute(self, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
        p = self.params
        if self.kind == "rsi":
            return (talib.RSI(close, timeperiod=p[0]),)
        if self.kind == "ema":
            return (talib.EMA(close, timeperiod=p[0]),)
        if self.kind == "sma":
            return (talib.SMA(close, timeperiod=p[0]),)
        if self.kind == "atr":
            return (talib.ATR(high, low, close, timeperiod=p[0]),)
        if self.kind == "adx":
            return (talib.ADX(high, low, close, timeperiod=p[0]),)
        if self.kind == "macd":
            return talib.MACD(close, fastperiod=p[0], slowperiod=p[1], signalperiod=p[2])
        upper, middle, lower = talib.BBANDS(close, timeperiod=p[0], nbdevup=p[1], nbdevdn=p[1], matype=0)
        return (upper, middle, lower)


def _fmt(value) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_factors(text: str) -> tuple[FactorSpec, ...]:
    """Parses "rsi:14,macd:12:26:9,..." ("none": no factors); raises ValueError with a sentence on a bad entry."""
    if text.strip().lower() == "none":
        return ()  # nobody reads factors (the catalogue strategies compute their own): compute none
    specs: list[FactorSpec] = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        kind, *raw = entry.lower().split(":")
        if kind not in _KINDS:
            raise ValueError(f"unknown factor {kind!r} in {entry!r}; known factors are {', '.join(_KINDS)}")
        types = _KINDS[kind]
        if len(raw) != len(types):
            raise ValueError(f"factor {entry!r} needs {len(types)} parameter(s), e.g. "
                             f"{ {'macd': 'macd:12:26:9', 'bbands': 'bbands:20:2'}.get(kind, kind + ':14') }")
        try:
            params = tuple(t(v) for t, v in zip(types, raw))
        except ValueError:
            raise ValueError(f"factor {entry!r} has a parameter that is not a number") from None
        if any(not math.isfinite(v) or v <= 0 for v in params) or (kind != "bbands" and any(v < 2 for v in params)):
            raise ValueError(f"factor {entry!r} needs periods of at least 2 and positive deviations")
        if kind == "macd" and params[0] >= params[1]:
            raise ValueError(f"factor {entry!r}: the fast period must be shorter than the slow period")
        spec = FactorSpec(kind, params)
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValueError("no factors configured; say \"none\" to compute none")
    return tuple(specs)


def compute_factors(specs: Iterable[FactorSpec], high: np.ndarray, low: np.ndarray,
                    close: np.ndarray) -> dict[str, float]:
    """The last value of every factor over the series, leaving out those still in warm-up."""
    values: dict[str, float] = {}
    for spec in specs:
        for name, series in zip(spec.names, spec.compute(high, low, close)):
            last = float(series[-1]) if len(series) else math.nan
            if math.isfinite(last):
                values[name] = last
    return values


class _Series:
    """Bounded mid high/low/close history in one array with room to grow: appends are O(1)
    and the history is always a contiguous view, which is what talib wants."""

    __slots__ = ("size", "data", "length", "offset", "last_start")

    def __init__(self, size: int) -> None:
        self.size = size
        self.data = np.empty((3, 2 * size), dtype=np.float64)
        self.length = 0
        self.offset = 0
        self.last_start = None

    def append(self, high: float, low: float, close: float) -> None:
        end = self.offset + self.length
        if end == self.data.shape[1]:  # out of room: move the newest size-1 values to the front
            keep = self.size - 1
            self.data[:, :keep] = self.data[:, end - keep:end]
            self.offset, self.length, end = 0, keep, keep
        self.data[0, end], self.data[1, end], self.data[2, end] = high, low, close
        if self.length == self.size:
            self.offset += 1
        else:
            self.length += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        window = slice(self.offset, self.offset + self.length)
        return self.data[0, window], self.data[1, window], self.data[2, window]


class FactorEngine:
    """Factor cache per (instrument, timeframe). Pure: no I/O.

        values = engine.on_candle(candle)   # factor values after this closed candle
        engine.warm(candles)                # replays stored candles, oldest first, without computing
        engine.latest(instrument, timeframe)
    """

    def __init__(self, specs: tuple[FactorSpec, ...] | None = None, *, history: int = DEFAULT_HISTORY) -> None:
        if history < 2:
            raise ValueError("the factor history must hold at least 2 candles")
        self.specs = specs if specs is not None else parse_factors(DEFAULT_FACTORS)
        self.history = history
        self._series: dict[tuple[str, Timeframe], _Series] = {}
        self._latest: dict[tuple[str, Timeframe], dict[str, float]] = {}

    def _append(self, candle: Candle) -> _Series | None:
        key = (candle.instrument, candle.timeframe)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self.history)
        if series.last_start is not None and candle.start <= series.last_start:
            return None  # already in the series (warm-up overlap): never count a candle twice
        series.append(candle.mid.high, candle.mid.low, candle.mid.close)
        series.last_start = candle.start
        return series

    def warm(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self._append(candle)

    def on_candle(self, candle: Candle) -> dict[str, float] | None:
        """Values after this closed candle; None when the candle is not newer than the series, or
        when no factor is configured (no factor event at all, rather than an empty one)."""
        if not self.specs:
            return None
        series = self._append(candle)
        if series is None:
            return None
        values = compute_factors(self.specs, *series.arrays())
        self._latest[(candle.instrument, candle.timeframe)] = values
        return values

    def latest(self, instrument: str, timeframe: Timeframe) -> dict[str, float]:
        return dict(self._latest.get((instrument, timeframe), {}))
