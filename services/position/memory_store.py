"""An in-memory LedgerStore for fast in-process backtests and domain tests.

It keeps the same all-or-nothing promise as PostgreSQL trivially: a call either
returns having stored everything or raises before storing anything.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime

from services.common.tradingday import DayFigures
from services.position.ledger import AccountRecord, Booking, Mark
from services.position.store import AdjustmentEntry, EquitySample, PositionChange, StateWrite, StoredLedger


class InMemoryStore:
    def __init__(self) -> None:
        self._state = StoredLedger()
        self.fills: dict[int, object] = {}
        self.bookings: dict[str, Booking] = {}  # by fill id or charge id, as the bookings table
        self.samples: list[EquitySample] = []
        self.stored_adjustments: list[AdjustmentEntry] = []
        self.stored_events: dict[int, PositionChange] = {}
        self.days: dict[tuple[str, datetime], DayFigures] = {}

    async def load(self) -> StoredLedger:
        state = copy.deepcopy(self._state)
        state.pending = [b for b in self.bookings.values() if b.pending]
        state.days = [(account, day) for (account, _), day in sorted(self.days.items())]
        return state

    def _put(self, state: StateWrite) -> None:
        stored = self._state
        for position in state.positions:
            stored.positions = [p for p in stored.positions if p.key != position.key] + [copy.copy(position)]
        for strategy in state.strategies:
            stored.strategies = [s for s in stored.strategies
                                 if (s.account, s.slug) != (strategy.account, strategy.slug)] + [copy.copy(strategy)]
        for account in state.accounts:
            stored.accounts = [a for a in stored.accounts if a.account != account.account] + [copy.copy(account)]
        self._days(state.days, state.trading_day_start)
        for charge, booking in state.financing:
            if charge.charge_id in stored.financing_ids:
                raise ValueError(f"financing {charge.charge_id} is already stored")
            stored.financing_ids.add(charge.charge_id)
            self.bookings[booking.key] = booking
        for booking in state.conversions:
            self.bookings[booking.key] = booking

    def _days(self, days, trading_day_start) -> None:
        for account, day in days:
            self.days[(account, day.day.start)] = day
        if trading_day_start is not None:
            self._state.trading_day_start = trading_day_start

    async def record_fill(self, *, seq, fill, booking, state, event_seq, event, sample) -> None:
        if fill.fill_id in self._state.applied_fill_ids or seq in self.fills:
            raise ValueError(f"fill {fill.fill_id} (seq {seq}) is already stored")
        self.fills[seq] = fill
        self.bookings[booking.key] = booking
        self._state.applied_fill_ids.add(fill.fill_id)
        self._state.last_fill_seq = max(self._state.last_fill_seq, seq)
        self._put(state)
        self._event(event_seq, event)
        self.samples.append(sample)

    async def record_skipped_fill(self, *, seq: int) -> None:
        self._state.last_fill_seq = max(self._state.last_fill_seq, seq)

    async def record_adjustment(self, *, adjustment, booking, state, event_seq, event, sample):
        stored = dataclasses.replace(adjustment, id=len(self.stored_adjustments) + 1)
        self.stored_adjustments.append(stored)
        self.bookings[booking.key] = booking
        self._put(state)
        self._event(event_seq, event)
        self.samples.append(sample)
        return stored

    async def record_bookkeeping(self, *, state: StateWrite, samples: list[EquitySample]) -> None:
        self._put(state)
        self.samples.extend(samples)

    async def record_marks(self, *, marks: list[Mark], accounts: list[AccountRecord],
                           samples: list[EquitySample], days=(), trading_day_start=None) -> None:
        known = {m.instrument: m for m in self._state.marks}
        known.update({m.instrument: m for m in marks})
        self._state.marks = list(known.values())
        for record in accounts:
            self._state.accounts = [a for a in self._state.accounts if a.account != record.account] + [
                copy.copy(record)]
        self._days(days, trading_day_start)
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
