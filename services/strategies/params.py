"""Strategy parameters: typed, frozen, keyword-only, and parsed from text.

Parameters reach a worker as text (environment, deployment manifest, CLI), so every
strategy declares a `Params` dataclass subclassing `BaseParams`; `parse_params` turns the
text into that class by each field's declared type and refuses unknown names and bad
values with a sentence that names the param, so a typo stops the worker at start instead
of trading with a silent default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "BaseParams",
    "Bounds",
    "StrategyConfigError",
    "bounds",
    "check_hhmm",
    "params_as_text",
    "parse_params",
    "require",
    "tuned_params",
]


class StrategyConfigError(ValueError):
    """A strategy slug or parameter is wrong; the message is a sentence for the operator."""


def require(condition: bool, sentence: str) -> None:
    """Raise StrategyConfigError with `sentence` unless `condition` holds."""
    if not condition:
        raise StrategyConfigError(sentence)


@dataclass(frozen=True, slots=True)
class Bounds:
    """The values a param may be set to while a worker runs: low <= value <= high, both inclusive."""

    low: int | float | Decimal
    high: int | float | Decimal

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"bounds {self.low} to {self.high} are empty: low must not exceed high")


def bounds(**ranges: tuple[int | float | Decimal, int | float | Decimal]) -> Mapping[str, Bounds]:
    """A Params class's `tunable`: `tunable = bounds(fast_period=(2, 50), stop_loss_pips=(Decimal(2), Decimal(100)))`."""
    return MappingProxyType({name: Bounds(low, high) for name, (low, high) in ranges.items()})


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseParams:
    """Fields every strategy has. Subclasses redeclare the exit fields with their own defaults.

    Subclasses validate their own fields by overriding `validate()` (called after the common
    checks), not `__post_init__`: zero-argument super() is unusable in slotted dataclasses.
    """

    instrument: str = "USD_JPY"
    units: Decimal = Decimal("10000")
    pip_size: Decimal = Decimal("0.01")
    stop_loss_pips: Decimal
    take_profit_pips: Decimal
    max_hold_minutes: int
    # Bars of the decision timeframe the worker loads before it trades.
    warmup_bars: int = 200
    # True: the stop-loss and take-profit rest at the venue from the moment an entry fills (they
    # fire tick by tick, also while this worker or the whole mesh is down), and the EXIT worker
    # leaves those two exits to the venue (docs/planes.md, "Protection at the venue"). False: the
    # EXIT worker checks them at each decision candle's close.
    protect_at_venue: bool = False
    # Pips a trailing stop follows the best price since the entry filled, held at the venue with
    # protect_at_venue (the paper venue and OANDA trail tick by tick). 0: no trailing stop.
    trailing_stop_pips: Decimal = Decimal(0)
    #: The params the analysis plane may change while the worker runs (services/analysis), with
    #: their bounds; every other param is fixed at the worker's start. None by default: a
    #: strategy opts in param by param, and keeps a bound inside what its candle book holds.
    tunable: ClassVar[Mapping[str, Bounds]] = MappingProxyType({})

    def __post_init__(self) -> None:
        require(bool(self.instrument.strip()), "param 'instrument' must not be empty")
        require(self.units > 0, f"param 'units' must be positive, got {self.units}")
        require(self.pip_size > 0, f"param 'pip_size' must be positive, got {self.pip_size}")
        require(self.stop_loss_pips > 0, f"param 'stop_loss_pips' must be positive, got {self.stop_loss_pips}")
        require(
            self.take_profit_pips > 0,
            f"param 'take_profit_pips' must be positive, got {self.take_profit_pips}",
        )
        require(
            self.max_hold_minutes >= 1,
            f"param 'max_hold_minutes' must be at least 1, got {self.max_hold_minutes}",
        )
        require(self.warmup_bars >= 1, f"param 'warmup_bars' must be at least 1, got {self.warmup_bars}")
        require(self.trailing_stop_pips >= 0,
                f"param 'trailing_stop_pips' must be 0 (none) or positive, got {self.trailing_stop_pips}")
        require(self.trailing_stop_pips == 0 or self.protect_at_venue,
                f"param 'trailing_stop_pips' ({self.trailing_stop_pips}) is a stop the venue holds and moves tick by "
                "tick: set protect_at_venue=true too, or trailing_stop_pips=0")
        self.validate()

    def validate(self) -> None:
        """Strategy-specific checks; raise StrategyConfigError with a sentence."""

    @property
    def pip(self) -> float:
        """Pip size as a float, for comparisons against candle prices (analytics are doubles)."""
        return float(self.pip_size)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _type_name(tp: Any) -> str:
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is Decimal:
        return "a decimal number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "text"
    return "a comma-separated list"


def _convert(name: str, owner: str, tp: Any, text: str) -> Any:
    value = text.strip()
    bad = StrategyConfigError(
        f"param '{name}' for {owner} must be {_type_name(tp)}, got {text!r}"
    )
    if tp is str:
        return value
    if tp is bool:
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise bad
    if tp is int:
        try:
            return int(value)
        except ValueError:
            raise bad from None
    if tp is float:
        try:
            number = float(value)
        except ValueError:
            raise bad from None
        if not math.isfinite(number):
            raise bad
        return number
    if tp is Decimal:
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise bad from None
        if not number.is_finite():
            raise bad
        return number
    if typing.get_origin(tp) is tuple:
        return tuple(part.strip() for part in value.split(",") if part.strip())
    raise StrategyConfigError(f"param '{name}' for {owner} has an unsupported type {tp!r}")


def parse_params(cls: type[BaseParams], raw: Mapping[str, str], *, owner: str | None = None) -> BaseParams:
    """Build `cls` from text values; absent names keep their defaults.

    `owner` (the strategy slug) is named in error sentences.
    """
    who = owner or cls.__qualname__
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise StrategyConfigError(
            f"unknown param '{unknown[0]}' for {who}; known params: {', '.join(fields)}"
        )
    values = {name: _convert(name, who, hints[name], text) for name, text in raw.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a field without default left unset
        raise StrategyConfigError(f"params for {who} are incomplete: {exc}") from None


def tuned_params(cls: type[BaseParams], overrides: Mapping[str, str], *, base: Mapping[str, str],
                 owner: str) -> BaseParams:
    """`base` (params as text, e.g. a worker's start params) with `overrides` on top.

    Each override must name a param `cls.tunable` declares and lie within its bounds;
    the whole set must then pass the params' own checks. Anything else raises
    StrategyConfigError with a sentence naming the param (and its bounds).
    """
    hints = typing.get_type_hints(cls)
    for name, text in sorted(overrides.items()):
        bounds = cls.tunable.get(name)
        if bounds is None:
            raise StrategyConfigError(
                f"param '{name}' of {owner} cannot be changed while it runs; "
                f"tunable params: {', '.join(sorted(cls.tunable)) or 'none'}")
        value = _convert(name, owner, hints[name], text)
        if not bounds.low <= value <= bounds.high:
            raise StrategyConfigError(
                f"param '{name}' of {owner} must be between {bounds.low} and {bounds.high} (the bounds "
                f"{owner} declares), got {text.strip()}")
    return parse_params(cls, {**base, **overrides}, owner=owner)


def params_as_text(params: BaseParams) -> dict[str, str]:
    """The inverse of parse_params: every field as the text that parses back to it."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, bool):
            out[f.name] = "true" if value else "false"
        elif isinstance(value, tuple):
            out[f.name] = ",".join(str(v) for v in value)
        else:
            out[f.name] = str(value)
    return out


def check_hhmm(name: str, value: str) -> tuple[int, int]:
    """Parse an "HH:MM" UTC time of day, naming the param when it is malformed."""
    require(bool(_HHMM.match(value)), f"param '{name}' must be a UTC time of day as HH:MM, got {value!r}")
    hours, minutes = value.split(":")
    return int(hours), int(minutes)
