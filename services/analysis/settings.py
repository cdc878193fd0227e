"""The policy guard: how a strategy's settings may change, one version at a time.

- Parameters change only through an operator's SetStrategyParams, and only to values the
  strategy declares tunable and within its declared bounds (the `ParamRules` port asks
  the strategy's own typed params; services/strategies/tuning.py). Anything else is
  refused with the strategy's sentence, and nothing changes.
- The allocation changes only through the policy's recommendations, and only when the
  effect differs (multiplier or on/off).
- A frozen strategy's settings change for nothing but lifting the freeze: a
  recommendation is ignored, a parameter change is refused.
- Every change is a new version (per strategy, starting at 1); each records who made it and why.

The transitions are pure: they return the new settings or the old ones, or raise; the
engine stores a new version and its audit record in one transaction before anyone sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.strategy_settings import Allocation, StrategySettings

POLICY_ACTOR = "analysis.policy"


class ParamsRefused(InvalidArgument):
    """A parameter outside what the strategy declares; the message is the strategy's sentence."""


class ParamRules(Protocol):
    def check(self, slug: str, params: Mapping[str, str], *, base: Mapping[str, str]) -> dict[str, str]:
        """`params` as their canonical text, checked over `base` (a worker's start params; empty: the
        strategy's defaults); ValueError with the strategy's sentence when refused."""


def with_params(current: StrategySettings, params: Mapping[str, str], reset: Sequence[str], *,
                rules: ParamRules, base: Mapping[str, str], actor: str, reason: str,
                now: datetime) -> StrategySettings:
    """The settings with these parameters merged in (and `reset` ones taken back to the start values)."""
    if current.frozen:
        raise FailedPrecondition(f"strategy {current.slug!r} is frozen ({current.reason}); lift the freeze "
                                 "(FreezeStrategy with frozen false) before changing its parameters")
    unknown = sorted(set(reset) - set(current.params))
    if unknown:
        raise InvalidArgument(f"reset names {unknown[0]!r}, which analysis has not set for {current.slug!r}; "
                              f"set through analysis: {', '.join(sorted(current.params)) or 'none'}")
    kept = {k: v for k, v in current.params.items() if k not in reset}
    try:
        merged = rules.check(current.slug, {**kept, **params}, base=base) if kept or params else {}
    except ValueError as exc:
        raise ParamsRefused(str(exc)) from None
    if merged == dict(current.params):
        return current
    version = current.version + 1
    return dataclasses.replace(current, version=version, params=merged, params_version=version, updated_time=now,
                               updated_by=actor, reason=reason)


def with_allocation(current: StrategySettings, allocation: Allocation, *, now: datetime) -> StrategySettings:
    """The settings with the policy's allocation, unless frozen or no different in effect."""
    if current.frozen or current.allocation.same_as(allocation):
        return current
    version = current.version + 1
    return dataclasses.replace(current, version=version, allocation=allocation, allocation_version=version,
                               updated_time=now, updated_by=POLICY_ACTOR, reason=allocation.reason)


def with_freeze(current: StrategySettings, frozen: bool, *, actor: str, reason: str,
                now: datetime) -> StrategySettings:
    if current.frozen == frozen:
        return current
    return dataclasses.replace(current, version=current.version + 1, frozen=frozen, updated_time=now,
                               updated_by=actor, reason=reason)


__all__ = ["POLICY_ACTOR", "ParamRules", "ParamsRefused", "with_allocation", "with_freeze", "with_params"]
