"""The strategy SDK, interface version 1: what a strategy sees and what it may answer.

A strategy is pure logic. It receives a `MarketView` (closed candles and the latest
factors) and answers with an `EntrySignal`, an `ExitSignal` or None. It holds no position
state and does no I/O: the ENTRY/EXIT workers feed it and turn its answers into order
intents, the same way live and in a backtest. User code is always called through
`StrategyHarness`, which turns an exception or a malformed answer into "no order".

Sizing by risk (optional): `size_by_risk(equity=..., risk_fraction=Decimal("0.01"),
entry_price=..., stop_price=..., quote_to_account=..., step=...)` gives the quantity whose
stop-loss would cost that fraction of equity, rounded down to the step (0: too small to
enter). A strategy that uses it answers `EntrySignal(quantity=size_by_risk(...))` instead
of `self.enter(...)`; see services/strategies/sizing.py for the formula and a worked example.
"""

from __future__ import annotations

import abc
import logging
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Literal

import numpy as np

from services.common.prices import Ohlc
from services.strategies import exits
from services.strategies.params import BaseParams, StrategyConfigError
from services.strategies.sizing import size_by_risk

__all__ = [
    "INTERFACE_VERSION",
    "TIMEFRAMES",
    "Bar",
    "BaseParams",
    "EntrySignal",
    "ExitSignal",
    "MarketView",
    "Ohlc",
    "OpenPosition",
    "Strategy",
    "StrategyConfigError",
    "StrategyHarness",
    "size_by_risk",
]

INTERFACE_VERSION = 1

# Finest first; also the order in which a protective exit picks a quote when no
# decision timeframe is given.
TIMEFRAMES: tuple[str, ...] = ("S5", "M1", "M5", "H1", "H4", "D1")
EXIT_RULES: tuple[str, ...] = ("stop_loss", "take_profit", "time_stop", "signal")

PriceSide = Literal["bid", "ask", "mid"]
PriceField = Literal["open", "high", "low", "close"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One closed candle. Datetimes are tz-aware UTC; `end` is exclusive."""

    instrument: str
    timeframe: str
    start: datetime
    end: datetime
    bid: Ohlc
    ask: Ohlc
    mid: Ohlc
    tick_count: int
    volume: float
    # Data time of the quote that closed the candle: the newest quote a decision on it has
    # seen. Orders placed on that decision carry it, so they fill only at a later quote.
    closed_time: datetime | None = None

    @property
    def spread(self) -> float:
        """Closing spread: what a round trip costs right now."""
        return self.ask.close - self.bid.close


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketView:
    """What a strategy sees at one decision.

    `bars[tf]` holds closed candles oldest first; the last is the one that just closed.
    `factors[tf]` holds the latest factor values on that last candle (e.g. "rsi_14",
    "bb_upper_20_2"); a factor still in warm-up is absent.
    """

    instrument: str
    now: datetime
    bars: Mapping[str, Sequence[Bar]]
    factors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Where a worker's book keeps each timeframe's prices as columns already (an object with
    # `series(field, price)`); a view built from bars alone reads them from the bars.
    columns: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)
    # One view serves the EXIT and the ENTRY decision and every indicator in them: each price
    # series is built once per view. Read-only arrays, so no strategy can change another's input.
    _series: dict = field(default_factory=dict, repr=False, compare=False)

    def last(self, tf: str) -> Bar | None:
        candles = self.bars.get(tf, ())
        return candles[-1] if candles else None

    def prices(self, tf: str, field_name: PriceField = "close", price: PriceSide = "mid") -> np.ndarray:
        """One OHLC field of every candle of `tf` as float64 (TA-Lib wants float64), read-only."""
        key = (tf, field_name, price)
        series = self._series.get(key)
        if series is None:
            kept = self.columns.get(tf)
            if kept is not None:
                series = kept.series(field_name, price)
            else:
                read = operator.attrgetter(f"{price}.{field_name}")
                series = np.array([read(bar) for bar in self.bars.get(tf, ())], dtype=np.float64)
                series.flags.writeable = False
            self._series[key] = series
        return series

    def closes(self, tf: str, price: PriceSide = "mid") -> np.ndarray:
        return self.prices(tf, "close", price)

    def factor(self, tf: str, name: str) -> float | None:
        """The latest factor value, or None when absent or not a finite number."""
        value = self.factors.get(tf, {}).get(name)
        if value is None or not math.isfinite(value):
            return None
        return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenPosition:
    """A strategy's open position as the position plane reports it."""

    instrument: str
    quantity: Decimal  # signed: + long, - short
    average_price: Decimal
    opened_time: datetime

    @property
    def side(self) -> Literal["long", "short"]:
        return "long" if self.quantity > 0 else "short"


@dataclass(frozen=True, slots=True, kw_only=True)
class EntrySignal:
    """Open a position. A market order when `limit_price` is None."""

    side: Literal["buy", "sell"]
    quantity: Decimal
    reason: str
    limit_price: Decimal | None = None
    # How sure the strategy is, 0 to 1 (None: it does not say). Recorded with the decision's
    # signal, so the analysis plane can tell whether its confident entries do better.
    confidence: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitSignal:
    """Close a position (all of it when `quantity` is None); `rule` names why, for the audit."""

    reason: str
    rule: Literal["stop_loss", "take_profit", "time_stop", "signal"]
    quantity: Decimal | None = None


class Strategy(abc.ABC):
    """One trading rule. Subclasses set the class attributes and implement `decide_entry`.

    `timeframes[0]` is the decision timeframe: the worker asks for a decision each time a
    candle of that timeframe closes. Everything else is an optional hook with a safe default.
    """

    slug: ClassVar[str]
    Params: ClassVar[type[BaseParams]]
    timeframes: ClassVar[tuple[str, ...]]
    interface_version: ClassVar[int] = INTERFACE_VERSION
    #: Factors read from the factor stream, in the market-data plane's syntax ("rsi:14,atr:14").
    #: A backtest computes only these, and a worker waits for them only when there are some.
    #: The catalogue reads none: it computes from candles over a fixed window, so a decision
    #: never depends on how much history the factor engine holds.
    reads_factors: ClassVar[str] = ""

    def __init__(self, params: BaseParams) -> None:
        if not isinstance(params, self.Params):
            raise StrategyConfigError(
                f"{self.slug} needs {self.Params.__qualname__}, got {type(params).__qualname__}"
            )
        self.params = params

    @property
    def decision_timeframe(self) -> str:
        return self.timeframes[0]

    @abc.abstractmethod
    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        """Answer the candle that just closed: enter now, or None."""

    def warmup_bars(self) -> int:
        """Bars of the decision timeframe to load before trading."""
        return self.params.warmup_bars

    def history_bars(self) -> Mapping[str, int]:
        """Bars to load per timeframe; multi-timeframe strategies override this."""
        return {tf: self.warmup_bars() for tf in self.timeframes}

    def factor_specs(self) -> str:
        return self.reads_factors

    def vector_rule(self):
        """The rule over whole arrays for `quantmesh backtest --fast` (services/strategies/vector.py),
        or None: the strategy cannot be vectorized and runs on the event path."""
        return None

    def is_active(self, now: datetime) -> bool:
        """Whether entries may be considered at `now` (exits are never gated by this)."""
        return True

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        """The strategy's own exit rule; by default only the protective exits apply."""
        return None

    def indicators(self, view: MarketView) -> Mapping[str, float]:
        """The indicator values a decision on `view` reads, by name, for the decision's signal;
        by default the factors of the decision timeframe."""
        return view.factors.get(self.decision_timeframe, {})

    def decide_exit(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        """Protective exits (stop-loss, take-profit, time-stop) first, then `exit_signal`."""
        protective = exits.protective_exit(self.params, view, position, timeframe=self.decision_timeframe)
        if protective is not None:
            return protective
        return self.exit_signal(view, position)

    # Helpers for subclasses, so every entry uses the configured size.
    def enter(self, side: Literal["buy", "sell"], reason: str, confidence: float | None = None) -> EntrySignal:
        return EntrySignal(side=side, quantity=self.params.units, reason=reason, confidence=confidence)

    def close(self, reason: str) -> ExitSignal:
        return ExitSignal(reason=reason, rule="signal")


def on_timeframe(cls: type[Strategy], timeframe: str) -> type[Strategy]:
    """The same strategy deciding on another timeframe (e.g. ma_cross on H1 bars).

    Only strategies that read their decision timeframe from `self.decision_timeframe`
    (rather than naming one) mean the same thing after this; the others keep reading the
    timeframes they name.
    """
    if timeframe not in TIMEFRAMES:
        raise StrategyConfigError(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    if cls.timeframes[0] == timeframe:
        return cls
    rest = tuple(tf for tf in cls.timeframes[1:] if tf != timeframe)
    return type(cls.__name__, (cls,), {"timeframes": (timeframe, *rest), "__module__": cls.__module__,
                                       "__doc__": cls.__doc__})


class StrategyHarness:
    """Calls user strategy code; an exception or malformed answer becomes "no order".

    A crashing strategy must never take its worker down or send a half-formed intent: the
    error is logged with the slug, counted, and the decision is skipped.
    """

    def __init__(self, strategy: Strategy, logger: logging.Logger) -> None:
        if strategy.interface_version != INTERFACE_VERSION:
            raise StrategyConfigError(
                f"{strategy.slug} is written for strategy interface {strategy.interface_version}, "
                f"this SDK is interface {INTERFACE_VERSION}"
            )
        self.strategy = strategy
        self.logger = logger
        self.errors = 0
        self.last_error = ""

    @property
    def slug(self) -> str:
        return self.strategy.slug

    def entry(self, view: MarketView) -> EntrySignal | None:
        try:
            active = self.strategy.is_active(view.now)
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            self._record("decide_entry", exc)
            return None
        return self.entry_signal(view) if active else None

    def entry_signal(self, view: MarketView) -> EntrySignal | None:
        """decide_entry alone, is_active aside: for a caller that gates entries itself (the fast path)."""
        try:
            signal = self.strategy.decide_entry(view)
            if signal is not None:
                _check_entry(signal)
            return signal
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            self._record("decide_entry", exc)
            return None

    def exit(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        return self._exit_answer("decide_exit", self.strategy.decide_exit, view, position)

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        """The strategy's own exit rule alone, the protective exits aside: for a caller that applies
        those itself (the fast path)."""
        return self._exit_answer("exit_signal", self.strategy.exit_signal, view, position)

    def _exit_answer(self, phase: str, rule, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        try:
            signal = rule(view, position)
            if signal is not None:
                _check_exit(signal, position)
            return signal
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            self._record(phase, exc)
            return None

    def indicators(self, view: MarketView) -> Mapping[str, float]:
        """The strategy's `indicators(view)`; an exception or a malformed answer gives none."""
        try:
            values = self.strategy.indicators(view)
            return {str(k): float(v) for k, v in values.items()}
        except Exception as exc:  # noqa: BLE001 - user code may raise anything
            self._record("indicators", exc)
            return {}

    def _record(self, phase: str, exc: Exception) -> None:
        self.errors += 1
        self.last_error = f"{phase}: {type(exc).__name__}: {exc}"
        self.logger.error(
            "strategy %s failed in %s; no order this time: %s",
            self.slug,
            phase,
            self.last_error,
            exc_info=exc,
            extra={"strategy": self.slug, "phase": phase},
        )


class InvalidSignal(Exception):
    """A strategy answered with something the SDK cannot turn into an intent."""


def _check_positive(value: object, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidSignal(f"{what} must be a positive Decimal, got {value!r}")


def _check_entry(signal: object) -> None:
    if not isinstance(signal, EntrySignal):
        raise InvalidSignal(f"decide_entry must return EntrySignal or None, got {type(signal).__name__}")
    if signal.side not in ("buy", "sell"):
        raise InvalidSignal(f"entry side must be 'buy' or 'sell', got {signal.side!r}")
    _check_positive(signal.quantity, "entry quantity")
    if signal.limit_price is not None:
        _check_positive(signal.limit_price, "entry limit price")
    if signal.confidence is not None and not (isinstance(signal.confidence, (int, float))
                                              and 0 <= signal.confidence <= 1):
        raise InvalidSignal(f"entry confidence must be a number from 0 to 1, got {signal.confidence!r}")


def _check_exit(signal: object, position: OpenPosition) -> None:
    if not isinstance(signal, ExitSignal):
        raise InvalidSignal(f"decide_exit must return ExitSignal or None, got {type(signal).__name__}")
    if signal.rule not in EXIT_RULES:
        raise InvalidSignal(f"exit rule must be one of {', '.join(EXIT_RULES)}, got {signal.rule!r}")
    if signal.quantity is not None:
        _check_positive(signal.quantity, "exit quantity")
        if signal.quantity > abs(position.quantity):
            raise InvalidSignal(
                f"exit quantity {signal.quantity} exceeds the open position {abs(position.quantity)}"
            )
