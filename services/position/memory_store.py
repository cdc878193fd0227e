"""An in-memory LedgerStore for fast in-process backtests and domain tests.

It keeps the same all-or-nothing promise as PostgreSQL trivially: a call either
returns having stored everything or raises before storing anything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime

from services.position.ledger import AccountRecord, LedgerFill, Mark, Position, StrategyRecord
from services.position.store import AdjustmentEntry, EquitySample, PositionChange, StoredLedger


class InMemoryStore:
    def __init__(self) -> None:
        self._state = StoredLedger()
        self.fills: dict[int, LedgerFill] = {}
        self.samples: list[EquitySample] = []
        self.stored_adjustments: list[AdjustmentEntry] = []
        self.stored_events: dict[int, PositionChange] = {}

    async def load(self) -> StoredLedger:
        return copy.deepcopy(self._state)

    def _put(self, position: Position, strategy: StrategyRecord, account: AccountRecord) -> None:
        state = self._state
        state.positions = [p for p in state.positions if p.key != position.key] + [copy.copy(position)]
        state.strategies = [s for s in state.strategies
                            if (s.account, s.slug) != (strategy.account, strategy.slug)] + [copy.copy(strategy)]
        state.accounts = [a for a in state.accounts if a.account != account.account] + [copy.copy(account)]

    async def record_fill(self, *, seq, fill, position, strategy, account, event_seq, event, sample) -> None:
        if fill.fill_id in self._state.applied_fill_ids or seq in self.fills:
            raise ValueError(f"fill {fill.fill_id} (seq {seq}) is already stored")
        self.fills[seq] = fill
        self._state.applied_fill_ids.add(fill.fill_id)
        self._state.last_fill_seq = max(self._state.last_fill_seq, seq)
        self._put(position, strategy, account)
        self._event(event_seq, event)
        self.samples.append(sample)

    async def record_skipped_fill(self, *, seq: int) -> None:
        self._state.last_fill_seq = max(self._state.last_fill_seq, seq)

    async def record_adjustment(self, *, adjustment, position, strategy, account, event_seq, event, sample):
        stored = dataclasses.replace(adjustment, id=len(self.stored_adjustments) + 1)
        self.stored_adjustments.append(stored)
        self._put(position, strategy, account)
        self._event(event_seq, event)
        self.samples.append(sample)
        return stored

    async def record_marks(self, *, marks: list[Mark], accounts: list[AccountRecord],
                           samples: list[EquitySample]) -> None:
        known = {m.instrument: m for m in self._state.marks}
        known.update({m.instrument: m for m in marks})
        self._state.marks = list(known.values())
        for record in accounts:
            self._state.accounts = [a for a in self._state.accounts if a.account != record.account] + [
                copy.copy(record)]
        self.samples.extend(samples)

    async def equity_curve(self, *, account: str, since: datetime | None, until: datetime | None,
                           limit: int) -> list[EquitySample]:
        found = [s for s in self.samples if s.account == account
                 and (since is None or s.time >= since) and (until is None or s.time < until)]
        return sorted(found, key=lambda s: s.time)[:limit]

    async def adjustments(self, *, account: str) -> list[AdjustmentEntry]:
        return [a for a in self.stored_adjustments if a.account == account]

    def _event(self, seq: int, event: PositionChange) -> None:
        self.stored_events[seq] = event
        self._state.last_event_seq = seq

    async def oldest_seq(self) -> int | None:
        return min(self.stored_events) if self.stored_events else None

    async def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, PositionChange]]:
        for seq in sorted(self.stored_events):
            if after_seq < seq <= up_to_seq:
                yield seq, self.stored_events[seq]
