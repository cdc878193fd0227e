"""The port between the position engine and its storage, plus the records it stores.

`repository.PostgresLedgerStore` is the live adapter; `memory_store.InMemoryStore` is
the one a fast in-process backtest uses. Both keep the same promise: `record_fill`
stores the fill, its money (`Booking`: the quote it was converted at, or pending), the
new state and the applied seq together, or nothing; every other write is one
transaction too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.common.tradingday import DayFigures
from services.position.financing import FinancingCharge
from services.position.ledger import AccountRecord, Booking, LedgerFill, Mark, Position, StrategyRecord


@dataclass(frozen=True, slots=True)
class PositionChange:
    """One event of the position stream: the position after a fill or an adjustment."""

    position: Position
    unrealized_pnl: Decimal
    mark_price: Decimal | None
    cause: str  # the fill id, or "adjustment:<id>"
    traceparent: str = ""
    tracestate: str = ""


@dataclass(frozen=True, slots=True)
class EquitySample:
    account: str
    time: datetime  # market time: the fill's or the mark's
    equity: Decimal
    balance: Decimal
    drawdown: Decimal


@dataclass(frozen=True, slots=True)
class AdjustmentEntry:
    """An audited correction booked to strategy "reconciliation"; never a silent rewrite."""

    id: int  # 0 until stored
    account: str
    instrument: str
    quantity: Decimal
    price: Decimal
    ledger_quantity: Decimal
    broker_quantity: Decimal
    broker: str
    actor: str
    reason: str
    time: datetime


@dataclass(frozen=True, slots=True)
class StateWrite:
    """The ledger state a change leaves, copied when the change was made, stored with it."""

    positions: tuple[Position, ...] = ()
    strategies: tuple[StrategyRecord, ...] = ()
    accounts: tuple[AccountRecord, ...] = ()
    days: tuple[tuple[str, DayFigures], ...] = ()  # (account, day)
    trading_day_start: datetime | None = None
    financing: tuple[tuple[FinancingCharge, Booking], ...] = ()
    conversions: tuple[Booking, ...] = ()  # bookings that were pending and are converted now


@dataclass(slots=True)
class StoredLedger:
    """Everything needed to rebuild the in-memory ledger after a restart."""

    positions: list[Position] = field(default_factory=list)
    strategies: list[StrategyRecord] = field(default_factory=list)
    accounts: list[AccountRecord] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    last_fill_seq: int = 0
    applied_fill_ids: set[str] = field(default_factory=set)
    last_event_seq: int = 0
    pending: list[Booking] = field(default_factory=list)
    days: list[tuple[str, DayFigures]] = field(default_factory=list)
    trading_day_start: datetime | None = None
    financing_ids: set[str] = field(default_factory=set)


class LedgerStore(Protocol):
    async def load(self) -> StoredLedger: ...

    async def record_fill(self, *, seq: int, fill: LedgerFill, booking: Booking, state: StateWrite,
                          event_seq: int, event: PositionChange, sample: EquitySample) -> None:
        """Stores the fill (unique fill_id), its booking, the new state, the cursor and the event in ONE
        transaction."""

    async def record_skipped_fill(self, *, seq: int) -> None:
        """Moves the cursor past a fill that was not applied (its fill_id was applied before)."""

    async def record_adjustment(self, *, adjustment: AdjustmentEntry, booking: Booking, state: StateWrite,
                                event_seq: int, event: PositionChange, sample: EquitySample) -> AdjustmentEntry:
        """Stores the adjustment with its booking and the new state in one transaction; returns it with its id."""

    async def record_bookkeeping(self, *, state: StateWrite, samples: list[EquitySample]) -> None:
        """Stores financing charges and late conversions (state.financing, state.conversions) with the state."""

    async def record_marks(self, *, marks: list[Mark], accounts: list[AccountRecord],
                           samples: list[EquitySample], days: list[tuple[str, DayFigures]],
                           trading_day_start: datetime | None) -> None:
        """Stores the latest marks, peak equity / max drawdown, equity samples and the days' peaks."""

    async def equity_curve(self, *, account: str, since: datetime | None, until: datetime | None,
                           limit: int) -> list[EquitySample]: ...

    async def adjustments(self, *, account: str) -> list[AdjustmentEntry]: ...

    async def oldest_seq(self) -> int | None:
        """Broadcaster backfill: the oldest stored position event."""

    def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, PositionChange]]:
        """Broadcaster backfill: stored position events after_seq < seq <= up_to_seq."""
