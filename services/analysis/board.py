"""The settings board: every strategy's current settings, changed one version at a time.

Each change (services/analysis/settings.py says which are allowed) is stored with its
history row and its audit record in one transaction, and only then shown to readers and
pushed to the watchers. A change runs as a task of its own under the board's lock, so a
caller that goes away (deadline, cancel) cannot leave memory and database apart.

Watchers wait for a version different from the one they have; settings are full state, so
a watcher slower than the changes gets the latest and may skip versions in between.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from services.analysis.repository import AnalysisRepository
from services.analysis.settings import POLICY_ACTOR, ParamRules, with_allocation, with_freeze, with_params
from services.common.audit import AuditRecord
from services.common.clock import Clock
from services.common.errors import Aborted
from services.common.strategy_settings import Allocation, StrategySettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who asked for a change (from the auth identity), and from where."""

    actor: str
    role: str
    source: str = ""


POLICY = Caller(actor=POLICY_ACTOR, role="service")


class SettingsBoard:
    def __init__(self, repository: AnalysisRepository, *, audit, clock: Clock, rules: ParamRules) -> None:
        self._repository = repository
        self._audit = audit  # AuditOutbox (or MemoryAudit): its row() goes into the change's transaction
        self._clock = clock
        self._rules = rules
        self._current: dict[str, StrategySettings] = {}
        self._start_params: dict[str, Mapping[str, str]] = {}
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self.closed = False

    async def load(self) -> "SettingsBoard":
        self._current = {s.slug: s for s in await self._repository.settings()}
        return self

    # ---- reading ----------------------------------------------------------------------------

    def get(self, slug: str) -> StrategySettings:
        """The strategy's settings; version 0 (nothing set) for a strategy analysis has no settings for."""
        return self._current.get(slug) or StrategySettings(slug=slug)

    def all(self) -> list[StrategySettings]:
        return [self._current[slug] for slug in sorted(self._current)]

    def note_start_params(self, slug: str, params: Mapping[str, str]) -> None:
        """A worker's start params: parameter changes of its strategy are checked over them."""
        if params:
            self._start_params[slug] = MappingProxyType(dict(params))

    async def next_change(self, slug: str, version: int, timeout: float) -> StrategySettings | None:
        """The strategy's settings once their version is no longer `version`; None after `timeout`
        (a heartbeat is due) or when the board closes."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(
                    lambda: self.closed or self.get(slug).version != version), timeout)
            except asyncio.TimeoutError:
                return None
        return None if self.closed else self.get(slug)

    async def close(self) -> None:
        """Ends every watch (server shutdown)."""
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    # ---- changing ---------------------------------------------------------------------------

    async def set_params(self, slug: str, params: Mapping[str, str], reset: Sequence[str], *, caller: Caller,
                         reason: str, expected_version: int = 0) -> StrategySettings:
        def change(current: StrategySettings) -> StrategySettings:
            if expected_version and expected_version != current.version:
                raise Aborted(f"the settings of {slug!r} are at version {current.version}, not {expected_version}; "
                              "read them again (GetStrategySettings) and retry")
            return with_params(current, params, reset, rules=self._rules, base=self._start_params.get(slug, {}),
                               actor=caller.actor, reason=reason, now=self._clock.now())

        return await self._change(slug, change, "params_change", caller, reason,
                                  lambda s: json.dumps(dict(s.params), sort_keys=True))

    async def freeze(self, slug: str, frozen: bool, *, caller: Caller, reason: str) -> StrategySettings:
        return await self._change(
            slug, lambda current: with_freeze(current, frozen, actor=caller.actor, reason=reason, now=self._clock.now()),
            "strategy_freeze" if frozen else "strategy_unfreeze", caller, reason,
            lambda s: "frozen" if s.frozen else "not frozen")

    async def apply_allocation(self, slug: str, allocation: Allocation) -> StrategySettings:
        """The policy's recommendation, unless the strategy is frozen or nothing would change."""
        return await self._change(
            slug, lambda current: with_allocation(current, allocation, now=self._clock.now()), "allocation_change",
            POLICY, allocation.reason, lambda s: f"{s.allocation.describe()} ({s.allocation.reason})")

    async def _change(self, slug: str, change: Callable[[StrategySettings], StrategySettings], event: str,
                      caller: Caller, reason: str, shown: Callable[[StrategySettings], str]) -> StrategySettings:
        async def locked() -> StrategySettings:
            async with self._lock:
                before = self.get(slug)
                after = change(before)
                if after is before:
                    return before
                record = AuditRecord(event=event, actor=caller.actor, role=caller.role, reason=reason,
                                     strategy_slug=slug, subject=f"settings v{after.version}", source=caller.source,
                                     old_value=shown(before), new_value=shown(after), time=self._clock.now())
                await self._repository.store_settings(before, after, self._audit.row(record))
                self._audit.stored()
                async with self._changed:
                    self._current[slug] = after
                    self._changed.notify_all()
                return after

        return await asyncio.shield(asyncio.ensure_future(locked()))


__all__ = ["Caller", "POLICY", "SettingsBoard"]
