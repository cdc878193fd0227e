"""Range metrics of one instrument, candle by candle: ATR and its regime, volatility, spread, sessions.

All from closed candles of one timeframe (mid prices, and the closing spread), updated
incrementally so a candle costs the same however long the plane has run:

- ATR: Wilder's average true range over `atr_period` candles, exactly as TA-Lib's ATR: the
  true range needs the previous close, the first ATR is the mean of the first `atr_period`
  true ranges, each later one (ATR x (period - 1) + TR) / period;
- regime: the share of the last `regime_window` ATRs at or below the current one (its
  percentile); up to 1/3 is LOW, above 2/3 HIGH, else NORMAL; UNKNOWN until
  `min_regime_candles` ATRs are held;
- volatility: the sample standard deviation of the log returns of mid closes over the last
  `volatility_window` candles; spread: the latest closing spread and its mean over that window;
- sessions (services/analysis/sessions.py): the high and low of each session's latest
  instance, and the average range of up to `sessions_averaged` instances before it.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime

from services.analysis.sessions import SESSIONS


class Regime(enum.StrEnum):
    UNKNOWN = "unknown"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


def regime_of(percentile: float) -> Regime:
    if percentile <= 1 / 3:
        return Regime.LOW
    return Regime.HIGH if percentile > 2 / 3 else Regime.NORMAL


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeSettings:
    atr_period: int = 14
    regime_window: int = 1440
    min_regime_candles: int = 60
    volatility_window: int = 60
    sessions_averaged: int = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeCandle:
    """What the metrics read of a closed candle: mid prices and the closing spread."""

    instrument: str
    start: datetime
    end: datetime
    high: float
    low: float
    close: float
    spread: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketState:
    """The instrument's state as of one candle's end: what a decision at that time saw."""

    instrument: str
    as_of: datetime
    atr: float | None
    atr_percentile: float | None
    regime: Regime
    spread: float
    close: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionFigures:
    session: str
    start: datetime
    high: float
    low: float
    open: bool
    average_range: float
    sessions_averaged: int

    @property
    def range(self) -> float:
        return self.high - self.low


@dataclass(frozen=True, slots=True, kw_only=True)
class RangeMetrics:
    instrument: str
    as_of: datetime | None
    candles: int
    state: MarketState | None
    return_stdev: float | None
    volatility_window: int
    average_spread: float | None
    atr_period: int
    sessions: tuple[SessionFigures, ...]


@dataclass(slots=True)
class _SessionInstance:
    day: date
    start: datetime
    high: float
    low: float


class RangeTracker:
    """The metrics of one instrument, fed its closed candles in time order."""

    def __init__(self, instrument: str, settings: RangeSettings) -> None:
        self.instrument = instrument
        self.settings = settings
        self.candles = 0
        self._last_start: datetime | None = None
        self._previous_close: float | None = None
        self._true_ranges: list[float] = []  # only until the first ATR
        self._atr: float | None = None
        self._atrs: deque[float] = deque(maxlen=settings.regime_window)
        self._closes: deque[float] = deque(maxlen=settings.volatility_window + 1)
        self._spreads: deque[float] = deque(maxlen=settings.volatility_window)
        self._sessions: dict[str, _SessionInstance] = {}
        self._session_ranges: dict[str, deque[float]] = {s.name: deque(maxlen=settings.sessions_averaged)
                                                         for s in SESSIONS}
        self._in_session: set[str] = set()
        self.state: MarketState | None = None

    def add(self, candle: RangeCandle) -> MarketState | None:
        """Takes the next closed candle; None when it is not newer than the last one taken."""
        if self._last_start is not None and candle.start <= self._last_start:
            return None
        self._last_start = candle.start
        self.candles += 1
        self._update_atr(candle)
        self._closes.append(candle.close)
        self._spreads.append(candle.spread)
        self._update_sessions(candle)
        percentile = regime = None
        if self._atr is not None:
            self._atrs.append(self._atr)
            percentile = sum(1 for a in self._atrs if a <= self._atr) / len(self._atrs)
            if len(self._atrs) >= self.settings.min_regime_candles:
                regime = regime_of(percentile)
        self.state = MarketState(instrument=self.instrument, as_of=candle.end, atr=self._atr,
                                 atr_percentile=percentile, regime=regime or Regime.UNKNOWN,
                                 spread=candle.spread, close=candle.close)
        return self.state

    def _update_atr(self, candle: RangeCandle) -> None:
        previous, self._previous_close = self._previous_close, candle.close
        if previous is None:
            return  # the first candle has no true range (no close before it)
        true_range = max(candle.high - candle.low, abs(candle.high - previous), abs(candle.low - previous))
        period = self.settings.atr_period
        if self._atr is None:
            self._true_ranges.append(true_range)
            if len(self._true_ranges) == period:
                self._atr = sum(self._true_ranges) / period
                self._true_ranges.clear()
            return
        self._atr = (self._atr * (period - 1) + true_range) / period

    def _update_sessions(self, candle: RangeCandle) -> None:
        self._in_session.clear()
        for session in SESSIONS:
            day = session.day_of(candle.start)
            if day is None:
                continue
            self._in_session.add(session.name)
            current = self._sessions.get(session.name)
            if current is None or current.day != day:
                if current is not None:
                    self._session_ranges[session.name].append(current.high - current.low)
                self._sessions[session.name] = _SessionInstance(day=day, start=session.start_of(day),
                                                                high=candle.high, low=candle.low)
                continue
            current.high = max(current.high, candle.high)
            current.low = min(current.low, candle.low)

    def metrics(self) -> RangeMetrics:
        returns = [math.log(b / a) for a, b in zip(self._closes, list(self._closes)[1:]) if a > 0 and b > 0]
        sessions = []
        for session in SESSIONS:
            current = self._sessions.get(session.name)
            if current is None:
                continue
            previous = self._session_ranges[session.name]
            sessions.append(SessionFigures(
                session=session.name, start=current.start, high=current.high, low=current.low,
                open=session.name in self._in_session,
                average_range=statistics.fmean(previous) if previous else 0.0, sessions_averaged=len(previous)))
        return RangeMetrics(instrument=self.instrument, as_of=self.state.as_of if self.state else None,
                            candles=self.candles, state=self.state,
                            return_stdev=statistics.stdev(returns) if len(returns) >= 2 else None,
                            volatility_window=self.settings.volatility_window,
                            average_spread=statistics.fmean(self._spreads) if self._spreads else None,
                            atr_period=self.settings.atr_period, sessions=tuple(sessions))


__all__ = ["MarketState", "RangeCandle", "RangeMetrics", "RangeSettings", "RangeTracker", "Regime", "SessionFigures",
           "regime_of"]
