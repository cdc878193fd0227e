"""Settings from the analysis plane, applied by a running worker at its next decision.

A worker follows its strategy's settings (services/common/strategy_settings.py) and, at
each decision, `Tuning.at_decision()` says what holds for it:

- parameters: the worker's start params with the ones set through analysis on top, each
  checked against the bounds the strategy declares (`BaseParams.tunable`) and by the
  params' own checks; the strategy is rebuilt only when the params version changes. A
  version the worker cannot apply (a bound its code does not declare, a set that fails its
  checks, more history than its candle book holds) is refused with a sentence and the
  worker keeps the params it has;
- the allocation: entries off, or a size multiplier on every entry's quantity, rounded
  down to the precision of the strategy's own quantity (10000 x 0.33 = 3300).

Every decision records both versions it used (0: the start params, full size).
`CatalogueRules` is the same check by strategy slug, for the analysis plane, so what
analysis accepts is what the workers apply.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Protocol

from services.common.strategy_settings import FULL_SIZE, Allocation, StrategySettings
from services.common.wire import trimmed_decimal_text
from services.strategies.desk import Decision, IntentDraft
from services.strategies.params import StrategyConfigError, params_as_text, tuned_params
from services.strategies.registry import catalogue
from services.strategies.sdk import Strategy

log = logging.getLogger(__name__)

#: The largest size multiplier a worker accepts, whatever the analysis plane says: a bug or a
#: bad setting there must not send ten times a strategy's size.
MAX_SIZE_MULTIPLIER = Decimal(10)


class SettingsSource(Protocol):
    def latest(self) -> StrategySettings | None:
        """The newest settings, or None while there are none (no analysis plane, not connected yet)."""


@dataclass(frozen=True, slots=True)
class Applied:
    """What holds for one decision."""

    strategy: Strategy
    params_version: int = 0
    allocation: Allocation = FULL_SIZE
    allocation_version: int = 0


class Tuning:
    def __init__(self, strategy: Strategy, source: SettingsSource | None = None) -> None:
        self._source = source
        self._start = params_as_text(strategy.params)
        self._capacity = dict(strategy.history_bars())  # what the worker's candle book holds
        self._applied = Applied(strategy)
        self._refused_versions: set[tuple[str, int]] = set()
        #: The last settings the worker could not apply, in a sentence ("" when none).
        self.problem = ""

    @property
    def applied(self) -> Applied:
        return self._applied

    def at_decision(self) -> Applied:
        settings = self._source.latest() if self._source is not None else None
        if settings is None:
            return self._applied
        current = self._applied
        strategy, params_version = current.strategy, current.params_version
        if settings.params_version != params_version and ("params", settings.params_version) not in self._refused_versions:
            try:
                strategy = self._rebuilt(current.strategy, settings.params)
                params_version = settings.params_version
            except StrategyConfigError as exc:
                self._refuse("params", settings.params_version, str(exc))
        allocation, allocation_version = current.allocation, current.allocation_version
        if settings.allocation_version != allocation_version \
                and ("allocation", settings.allocation_version) not in self._refused_versions:
            problem = _allocation_problem(settings.allocation)
            if problem:
                self._refuse("allocation", settings.allocation_version, problem)
            else:
                allocation, allocation_version = settings.allocation, settings.allocation_version
        self._applied = Applied(strategy, params_version, allocation, allocation_version)
        return self._applied

    def _rebuilt(self, strategy: Strategy, overrides: Mapping[str, str]) -> Strategy:
        kind = type(strategy)
        rebuilt = kind(tuned_params(kind.Params, overrides, base=self._start, owner=strategy.slug))
        for timeframe, bars in rebuilt.history_bars().items():
            held = self._capacity.get(timeframe, 0)
            if bars > held:
                raise StrategyConfigError(
                    f"{strategy.slug} would need {bars} {timeframe} candles and this worker holds {held}; "
                    "restart it with a larger warmup_bars to use these params")
        return rebuilt

    def _refuse(self, what: str, version: int, sentence: str) -> None:
        self._refused_versions.add((what, version))
        self.problem = f"settings version {version}: {what} not applied: {sentence}"
        log.error("%s", self.problem, extra={"version": version})


def _allocation_problem(allocation: Allocation) -> str:
    multiplier = allocation.size_multiplier
    if allocation.entries_enabled and not (multiplier.is_finite() and 0 < multiplier <= MAX_SIZE_MULTIPLIER):
        return (f"size multiplier {multiplier} is outside what a worker accepts (above 0, at most "
                f"{MAX_SIZE_MULTIPLIER})")
    return ""


def sized_entry(decision: Decision, draft: IntentDraft | None, applied: Applied) -> tuple[Decision, IntentDraft | None]:
    """An entry decision as the allocation allows it: skipped when entries are off, resized otherwise."""
    allocation, version = applied.allocation, applied.allocation_version
    if draft is None or (allocation.entries_enabled and allocation.size_multiplier == 1):
        return decision, draft
    if not allocation.entries_enabled:
        return dataclasses.replace(decision, action="skip", client_order_id="",
                                   reason=f"allocation v{version}: entries off ({allocation.reason}); "
                                          f"the strategy said: {decision.reason}"), None
    quantum = Decimal(1).scaleb(min(draft.quantity.as_tuple().exponent, 0))
    quantity = (draft.quantity * allocation.size_multiplier).quantize(quantum, rounding=ROUND_DOWN)
    size = f"x{trimmed_decimal_text(allocation.size_multiplier)}"
    if quantity <= 0:
        return dataclasses.replace(decision, action="skip", client_order_id="",
                                   reason=f"allocation v{version}: size {size} leaves no quantity of "
                                          f"{draft.quantity}; the strategy said: {decision.reason}"), None
    return (dataclasses.replace(decision, reason=f"{decision.reason} (size {size} by allocation v{version})"),
            dataclasses.replace(draft, quantity=quantity))


class CatalogueRules:
    """The analysis plane's ParamRules: each catalogue strategy's own bounds and checks."""

    def check(self, slug: str, params: Mapping[str, str], *, base: Mapping[str, str]) -> dict[str, str]:
        kind = catalogue().get(slug)
        if kind is None:
            raise StrategyConfigError(f"unknown strategy {slug!r}; its params cannot be checked. Known strategies: "
                                      f"{', '.join(sorted(catalogue()))}")
        tuned = params_as_text(tuned_params(kind.Params, params, base=base, owner=slug))
        return {name: tuned[name] for name in params}


__all__ = ["Applied", "CatalogueRules", "MAX_SIZE_MULTIPLIER", "SettingsSource", "Tuning", "sized_entry"]
