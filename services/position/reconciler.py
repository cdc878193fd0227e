"""Reconciliation at start and every few minutes: the ledger against the venue's own positions.

One check: ask the venue (through the order plane's GetBrokerPositions, which also says how
many fills the order plane had recorded when the venue answered), wait until the ledger has
applied those fills, and compare net quantities per instrument. A difference must still be
there, unchanged, at a second look `confirm_seconds` later before it counts: a fill on its way
from the venue to the ledger is not a difference.

A confirmed difference is logged, written to the audit trail, and decided by policy:
- `block` (the default): held for an operator. It is published on Position.WatchExposure, and
  the order plane refuses entries (risk.reconciliation, naming the difference) until an
  operator decides: Position.Reconcile with apply_adjustments (adopt the venue's figure as an
  audited adjustment), or fixing it at the venue (the next check finds the books in agreement).
- `adopt`: booked at once as an audited adjustment to strategy "reconciliation".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from services.common.audit import AuditRecord
from services.position.engine import Difference, PositionEngine

log = logging.getLogger(__name__)
POLICIES = ("block", "adopt")
ACTOR = "reconciler"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconcileSettings:
    interval_seconds: float = 300.0  # 0: at start only (and on demand with Position.Reconcile)
    policy: str = "block"
    confirm_seconds: float = 5.0
    catch_up_seconds: float = 30.0  # how long the ledger may take to apply the fills the venue already has


class Reconciler:
    def __init__(self, engine: PositionEngine, venue, audit, settings: ReconcileSettings, *, account: str) -> None:
        self._engine = engine
        self._venue = venue  # BrokerPositionsClient (view(account))
        self._audit = audit
        self._settings = settings
        self._account = account
        self.checks = 0

    async def run(self) -> None:
        """At start, then every interval; a check that cannot reach the venue is retried at the next one."""
        while True:
            try:
                await self.check()
            except Exception as exc:  # the order plane or the venue is away: the next round asks again
                log.warning("reconciliation could not run", extra={"error": str(exc)[:300]})
            if self._settings.interval_seconds <= 0:
                return
            await asyncio.sleep(self._settings.interval_seconds)

    async def check(self) -> list[Difference]:
        """One reconciliation; the confirmed differences (and what the policy did with them)."""
        self.checks += 1
        first = await self._compare()
        if first is None:
            return []
        if first:
            await asyncio.sleep(self._settings.confirm_seconds)
            second = await self._compare()
            confirmed = [d for d in (second or []) if d in first]
        else:
            confirmed = []
        if not confirmed:
            self._engine.hold_for_operator(self._account, ())
            log.info("reconciliation: the ledger agrees with the venue", extra={"account": self._account})
            return []
        for diff in confirmed:
            log.warning("reconciliation: the ledger differs from the venue", extra={
                "account": diff.account, "instrument": diff.instrument, "ledger_quantity": str(diff.ledger_quantity),
                "broker_quantity": str(diff.broker_quantity), "policy": self._settings.policy})
        if self._settings.policy == "adopt":
            await self._adopt(confirmed)
        else:
            self._engine.hold_for_operator(self._account, [d.sentence() for d in confirmed])
            for diff in confirmed:
                await self._audit.record(AuditRecord(
                    event="reconciliation", actor=ACTOR, role="service", subject=diff.instrument,
                    reason=f"held for an operator: entries refused until decided ({diff.sentence()})",
                    old_value=str(diff.ledger_quantity), new_value=str(diff.broker_quantity)))
        return confirmed

    async def _compare(self) -> list[Difference] | None:
        view = await self._venue.view(self._account)
        if not await self._engine.wait_for_fill_seq(view.last_fill_seq, self._settings.catch_up_seconds):
            log.warning("reconciliation skipped: the ledger has not applied the fills the order plane recorded",
                        extra={"wanted_fill_seq": view.last_fill_seq, "applied": self._engine.last_fill_seq})
            return None
        return self._engine.differences(self._account, view.positions)

    async def _adopt(self, confirmed: list[Difference]) -> None:
        view = await self._venue.view(self._account)
        result = await self._engine.reconcile(
            account=self._account, broker=view.broker, broker_positions=view.positions, apply_adjustments=True,
            reason="automatic reconciliation (QUANTMESH_RECONCILE_POLICY=adopt): the venue's position adopted",
            actor=ACTOR)
        for adjustment in result.adjustments:
            await self._audit.record(AuditRecord(
                event="reconciliation", actor=ACTOR, role="service", subject=adjustment.instrument,
                reason=f"adopted the venue's position as adjustment {adjustment.id} at {adjustment.price}",
                old_value=str(adjustment.ledger_quantity), new_value=str(adjustment.broker_quantity)))
