"""The position engine: the ledger plus its store, its event stream and the single-writer rule.

Every change (fill, adjustment, mark sample) runs under one lock, so fills are applied
one at a time in seq order and the stored state always equals the in-memory ledger
after a commit. When a store write fails, the in-memory ledger is rebuilt from the
store, so memory never runs ahead of what a restart would see.

Idempotency: a fill whose seq is not above the last applied seq, or whose fill_id was
applied before, is skipped (a redelivery after a reconnect counts once); a venue's
financing charge whose id was applied before likewise.

Money that moves without a fill (financing at a rollover, pending money converted by the
first quote of its currency) is stored as soon as a mark makes it, under the same lock
(`Ledger.take_bookkeeping`); a fill or an adjustment stores whatever is waiting with it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from opentelemetry import trace

from services.common.clock import Clock
from services.common.errors import FailedPrecondition
from services.common.streams import Broadcaster
from services.common.telemetry import current_trace_context
from services.common.tradingday import DayFigures, TradingCalendar
from services.position.financing import NO_RATES, FinancingCharge, FinancingRates
from services.position.ledger import (
    ZERO, AccountFigures, Bookkeeping, Ledger, LedgerFill, Mark, Position, PositionKey, StrategyFigures,
    StrategyRecord,
)
from services.position.store import AdjustmentEntry, EquitySample, LedgerStore, PositionChange, StateWrite

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

RECONCILIATION_STRATEGY = "reconciliation"


@dataclass(frozen=True, slots=True)
class PositionView:
    position: Position
    unrealized_pnl: Decimal
    mark_price: Decimal | None


@dataclass(frozen=True, slots=True)
class SnapshotView:
    positions: list[PositionView]
    account: AccountFigures
    strategies: list[StrategyFigures]
    last_fill_seq: int
    as_of: datetime
    days: tuple[DayFigures, ...] = ()
    open_positions: int = 0


@dataclass(frozen=True, slots=True)
class ExposureView:
    positions: list[PositionView]
    account: AccountFigures
    strategies: list[StrategyFigures]
    last_fill_seq: int
    as_of: datetime
    version: int
    # The account's last trading days, oldest first, the current one last (empty before any event).
    days: tuple[DayFigures, ...] = ()
    open_positions: int = 0  # open (strategy, instrument) positions of the whole account
    reconciliation_blocks: tuple[str, ...] = ()  # differences held for an operator (they stop entries)


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    instrument: str
    quantity: Decimal
    average_price: Decimal | None


@dataclass(frozen=True, slots=True)
class Difference:
    account: str
    instrument: str
    ledger_quantity: Decimal
    broker_quantity: Decimal

    @property
    def difference(self) -> Decimal:
        return self.broker_quantity - self.ledger_quantity

    def sentence(self) -> str:
        return (f"{self.instrument} on {self.account}: the ledger holds {self.ledger_quantity}, the venue "
                f"{self.broker_quantity} (difference {self.difference})")


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    broker: str
    differences: list[Difference]
    adjustments: list[AdjustmentEntry]

    @property
    def in_sync(self) -> bool:
        return not self.differences


class PositionEngine:
    def __init__(self, *, ledger: Ledger, store: LedgerStore, clock: Clock, default_account: str,
                 sample_interval: timedelta = timedelta(minutes=1),
                 ring_size: int = 10_000, queue_size: int = 1_000) -> None:
        self.ledger = ledger
        self.default_account = default_account
        self.currency = ledger.currency
        self._store = store
        self._clock = clock
        self._sample_interval = sample_interval
        self._lock = asyncio.Lock()
        self._last_fill_seq = 0
        self._applied_fill_ids: set[str] = set()
        self._applied_charge_ids: set[str] = set()
        self._last_sample: dict[str, datetime] = {}
        self._ring_size = ring_size
        self._queue_size = queue_size
        self.changes: Broadcaster[PositionChange] = Broadcaster(
            name="positions", ring_size=ring_size, queue_size=queue_size, backfill=store)
        # Exposure watchers wait on this: a new version after every stored fill or adjustment.
        self._version = 0
        self.reconciliation_blocks: dict[str, tuple[str, ...]] = {}
        self._changed = asyncio.Event()

    @classmethod
    async def open(cls, *, store: LedgerStore, clock: Clock, starting_cash: Decimal, default_account: str,
                   currency: str, calendar: TradingCalendar | None = None, financing: FinancingRates = NO_RATES,
                   **options) -> "PositionEngine":
        """Rebuilds the ledger from the stored state tables (not by replaying fills)."""
        ledger = Ledger(starting_cash=starting_cash, currency=currency, calendar=calendar, financing=financing)
        engine = cls(ledger=ledger, store=store, clock=clock, default_account=default_account, **options)
        await engine._reload()
        return engine

    async def _reload(self) -> None:
        stored = await self._store.load()
        old = self.ledger
        ledger = Ledger(starting_cash=old.starting_cash, currency=old.currency, calendar=old.calendar,
                        financing=old.financing_rates)
        ledger.restore(positions=stored.positions, strategies=stored.strategies, accounts=stored.accounts,
                       marks=stored.marks, pending=stored.pending, days=stored.days,
                       trading_day_start=stored.trading_day_start)
        self.ledger = ledger
        self._last_fill_seq = stored.last_fill_seq
        self._applied_fill_ids = set(stored.applied_fill_ids)
        self._applied_charge_ids = set(stored.financing_ids)
        if stored.last_event_seq != self.changes.last_seq:
            self.changes.close()
            self.changes = Broadcaster(name="positions", ring_size=self._ring_size, queue_size=self._queue_size,
                                       backfill=self._store, last_seq=stored.last_event_seq)
        self._bump()

    @property
    def last_fill_seq(self) -> int:
        return self._last_fill_seq

    # ----------------------------------------------------------------- fills

    async def apply_fill(self, seq: int, fill: LedgerFill) -> bool:
        """Applies one fill of the order plane's stream; False when it was already applied."""
        async with self._lock:
            if seq <= self._last_fill_seq or fill.fill_id in self._applied_fill_ids:
                log.info("fill already applied; skipped",
                         extra={"seq": seq, "fill_id": fill.fill_id, "last_fill_seq": self._last_fill_seq})
                if seq > self._last_fill_seq:
                    await self._store.record_skipped_fill(seq=seq)
                    self._last_fill_seq = seq
                return False
            outcome = self.ledger.apply_fill(fill)
            state = self._state_write(self.ledger.take_bookkeeping(), outcome.position.key, outcome.strategy)
            event = self._event(outcome.position, cause=fill.fill_id)
            sample = _sample(outcome.figures, fill.time)
            event_seq = self.changes.last_seq + 1
            try:
                await self._store.record_fill(seq=seq, fill=fill, booking=outcome.booking, state=state,
                                              event_seq=event_seq, event=event, sample=sample)
            except BaseException:
                await self._reload()  # memory must not run ahead of the store
                raise
            self._last_fill_seq = seq
            self._applied_fill_ids.add(fill.fill_id)
            self._last_sample[fill.account] = fill.time
            self.changes.publish(event, seq=event_seq)
            self._bump()
            return True

    # ----------------------------------------------------------------- marks

    async def apply_mark(self, mark: Mark) -> None:
        """Updates unrealized PnL in memory; stores marks and equity samples at most once per
        sample interval of market time per account, and at once what the mark booked."""
        changed = self.ledger.apply_mark(mark)
        if self.ledger.has_bookkeeping():
            await self._store_bookkeeping(mark.time)
        due = [f for f in changed if self._sample_due(f.account, mark.time)]
        if not due:
            return
        async with self._lock:
            accounts = [self.ledger.account_record(f.account) for f in due]
            samples = [_sample(self.ledger.account_figures(f.account), mark.time) for f in due]
            await self._store.record_marks(marks=self.ledger.marks(), accounts=accounts, samples=samples,
                                           days=self._days(a.account for a in accounts),
                                           trading_day_start=self._trading_day_start())
            for figures in due:
                self._last_sample[figures.account] = mark.time

    async def _store_bookkeeping(self, moment: datetime) -> None:
        # Taken under the lock: a fill's failed write reloads the ledger, and what a mark booked
        # before it must not be stored over the reloaded state (the next mark books it again).
        async with self._lock:
            await self._write_bookkeeping(moment)

    async def _write_bookkeeping(self, moment: datetime) -> None:
        """Stores what the ledger booked without a fill; caller holds the lock."""
        kept = self.ledger.take_bookkeeping()
        if not kept:
            return
        state = self._state_write(kept)
        samples = [_sample(self.ledger.account_figures(a.account), moment) for a in state.accounts]
        try:
            await self._store.record_bookkeeping(state=state, samples=samples)
        except BaseException:
            await self._reload()
            raise
        self._applied_charge_ids.update(charge.charge_id for charge, _ in kept.financing)
        for sample in samples:
            self._last_sample[sample.account] = moment
        self._bump()

    # ----------------------------------------------------------------- financing

    async def apply_financing(self, charge: FinancingCharge) -> bool:
        """The port for financing a venue reports (QUANTMESH_FINANCING_SOURCE=venue; OANDA's
        DAILY_FINANCING transactions): books one charge, once per `charge_id` (the venue's
        transaction id, with the instrument if the venue splits it per position); False when it
        was applied before. Money in a currency other than the account's converts by the usual rules.
        """
        async with self._lock:
            if charge.charge_id in self._applied_charge_ids:
                return False
            self.ledger.apply_financing(charge)
            await self._write_bookkeeping(charge.time)
            return True

    def _sample_due(self, account: str, moment: datetime) -> bool:
        last = self._last_sample.get(account)
        return last is None or moment - last >= self._sample_interval

    # ----------------------------------------------------------------- reading

    async def consistent_snapshot(self, **filters) -> SnapshotView:
        """`snapshot` taken between two writes, never during one.

        A fill changes the in-memory ledger before its transaction commits (and is undone if the
        commit fails), so a snapshot taken while a write awaits the database could show a fill
        that last_fill_seq does not count yet, or one that is about to be rolled back. Risk checks
        and strategies get positions and last_fill_seq that belong together.
        """
        async with self._lock:
            return self.snapshot(**filters)

    async def exposure(self, *, account: str = "", strategies: Iterable[str] = (),
                       instruments: Iterable[str] = ()) -> ExposureView:
        """Open positions, account figures and every strategy's figures, as of one fill seq."""
        account = account or self.default_account
        wanted = frozenset(strategies)
        async with self._lock:
            ledger = self.ledger
            positions = ledger.positions(account, strategies=strategies, instruments=instruments)
            slugs = sorted({r.slug for r in ledger.strategy_records() if r.account == account
                            and (not wanted or r.slug in wanted)} | wanted)
            return ExposureView(
                positions=[self._view(p) for p in positions], account=ledger.account_figures(account),
                strategies=[ledger.strategy_figures(account, slug) for slug in slugs],
                last_fill_seq=self._last_fill_seq, as_of=self._clock.now(), version=self._version,
                days=ledger.trading_days(account), open_positions=ledger.open_position_count(account),
                reconciliation_blocks=self.reconciliation_blocks.get(account, ()))

    def hold_for_operator(self, account: str, differences: Iterable[str]) -> None:
        """Publishes the differences reconciliation holds (empty: none): entries stop while any is held."""
        held = tuple(differences)
        if self.reconciliation_blocks.get(account, ()) != held:
            self.reconciliation_blocks[account] = held
            self._bump()

    async def wait_for_fill_seq(self, fill_seq: int, timeout: float) -> bool:
        """True once every fill up to `fill_seq` is applied; False after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._last_fill_seq < fill_seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self.wait_for_change(self._version, remaining)
        return True

    def differences(self, account: str, broker_positions: Iterable[BrokerPosition]) -> list[Difference]:
        """The ledger's net quantity per instrument against the venue's (no lock: a snapshot in memory)."""
        account = account or self.default_account
        return _differences(account, self.ledger.net_quantities(account), {b.instrument: b for b in broker_positions})

    async def wait_for_change(self, seen_version: int, timeout: float) -> int:
        """Returns as soon as the version differs from `seen_version`, or after `timeout` seconds."""
        if self._version == seen_version:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self._version

    def _bump(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def snapshot(self, *, account: str = "", strategies: Iterable[str] = (), instruments: Iterable[str] = (),
                 include_flat: bool = False) -> SnapshotView:
        """From memory, without waiting; only consistent when no write is in flight (see consistent_snapshot).
        An account with no fills yet gives no positions and starting-cash figures."""
        account = account or self.default_account
        positions = self.ledger.positions(account, strategies=strategies, instruments=instruments,
                                          include_flat=include_flat)
        slugs = sorted({p.strategy for p in positions} | set(strategies))
        return SnapshotView(
            positions=[self._view(p) for p in positions],
            account=self.ledger.account_figures(account),
            strategies=[self.ledger.strategy_figures(account, slug) for slug in slugs],
            last_fill_seq=self._last_fill_seq,
            as_of=self._clock.now(),
            days=self.ledger.trading_days(account),
            open_positions=self.ledger.open_position_count(account),
        )

    async def equity_curve(self, *, account: str = "", since: datetime | None = None,
                           until: datetime | None = None, limit: int = 1000) -> list[EquitySample]:
        return await self._store.equity_curve(account=account or self.default_account, since=since,
                                              until=until, limit=limit)

    async def adjustments(self, *, account: str = "") -> list[AdjustmentEntry]:
        return await self._store.adjustments(account=account or self.default_account)

    # ----------------------------------------------------------------- reconciliation

    async def reconcile(self, *, account: str, broker: str, broker_positions: Iterable[BrokerPosition],
                        apply_adjustments: bool, reason: str, actor: str) -> ReconcileResult:
        """Compares net quantities per instrument; with apply_adjustments books each difference
        to strategy "reconciliation" at the broker's average price (or the mark's mid when the
        broker gives none), as an audited adjustment."""
        account = account or self.default_account
        async with self._lock:
            differences = _differences(account, self.ledger.net_quantities(account),
                                       {b.instrument: b for b in broker_positions})
            for diff in differences:
                log.warning("position differs from the broker", extra={
                    "account": account, "instrument": diff.instrument, "broker": broker,
                    "ledger_quantity": str(diff.ledger_quantity), "broker_quantity": str(diff.broker_quantity),
                    "difference": str(diff.difference)})
            if not differences:
                self.hold_for_operator(account, ())  # in agreement: nothing left to hold
            if not apply_adjustments or not differences:
                return ReconcileResult(broker=broker, differences=differences, adjustments=[])
            brokers = {b.instrument: b for b in broker_positions}
            prices = {d.instrument: self._adjustment_price(brokers.get(d.instrument), d.instrument)
                      for d in differences}  # all priced before any is booked: all or none refused
            adjustments = [await self._book_adjustment(diff, prices[diff.instrument], broker, actor, reason)
                           for diff in differences]
        # Every difference is now booked: what was held for an operator is decided.
        self.hold_for_operator(account, ())
        return ReconcileResult(broker=broker, differences=differences, adjustments=adjustments)

    def _adjustment_price(self, broker_position: BrokerPosition | None, instrument: str) -> Decimal:
        if broker_position is not None and broker_position.average_price is not None:
            return broker_position.average_price
        mark = self.ledger.mark(instrument)
        if mark is None:
            raise FailedPrecondition(
                f"cannot book an adjustment for {instrument}: the broker gives no average price and no mark "
                "has been received yet; wait for market data or fix the position at the broker")
        return (mark.bid + mark.ask) / 2

    async def _book_adjustment(self, diff: Difference, price: Decimal, broker: str, actor: str,
                               reason: str) -> AdjustmentEntry:
        now = self._clock.now()
        quantity = diff.difference
        with tracer.start_as_current_span("position.adjustment"):
            fill = LedgerFill(fill_id=f"adjustment:{diff.instrument}:{now.isoformat()}", account=diff.account,
                              instrument=diff.instrument, strategy=RECONCILIATION_STRATEGY,
                              side="buy" if quantity > 0 else "sell", quantity=abs(quantity), price=price,
                              commission=ZERO, time=now)
            outcome = self.ledger.apply_fill(fill)
            state = self._state_write(self.ledger.take_bookkeeping(), outcome.position.key, outcome.strategy)
            entry = AdjustmentEntry(id=0, account=diff.account, instrument=diff.instrument, quantity=quantity,
                                    price=price, ledger_quantity=diff.ledger_quantity,
                                    broker_quantity=diff.broker_quantity, broker=broker, actor=actor,
                                    reason=reason, time=now)
            event = self._event(outcome.position, cause="adjustment")
            event_seq = self.changes.last_seq + 1
            try:
                stored = await self._store.record_adjustment(
                    adjustment=entry, booking=outcome.booking, state=state, event_seq=event_seq, event=event,
                    sample=_sample(outcome.figures, now))
            except BaseException:
                await self._reload()
                raise
        log.warning("adjustment booked", extra={
            "adjustment_id": stored.id, "account": stored.account, "instrument": stored.instrument,
            "quantity": str(stored.quantity), "price": str(stored.price), "actor": actor, "reason": reason})
        self.changes.publish(event, seq=event_seq)
        self._bump()
        return stored

    # ----------------------------------------------------------------- internals

    def _state_write(self, kept: Bookkeeping, position_key: PositionKey | None = None,
                     strategy: StrategyRecord | None = None) -> StateWrite:
        """Copies of what a change touched, taken right after it (no await between)."""
        ledger = self.ledger
        keys = set(kept.positions) | ({position_key} if position_key else set())
        accounts = set(kept.accounts) | ({position_key[0]} if position_key else set())
        positions = tuple(copy.copy(p) for p in (ledger.position(*k) for k in sorted(keys)) if p is not None)
        return StateWrite(positions=positions, strategies=(strategy,) if strategy is not None else (),
                          accounts=tuple(ledger.account_record(a) for a in sorted(accounts)),
                          days=self._days(accounts), trading_day_start=self._trading_day_start(),
                          financing=tuple(kept.financing), conversions=tuple(kept.conversions))

    def _days(self, accounts: Iterable[str]) -> tuple[tuple[str, DayFigures], ...]:
        """The newest day of each account, and the one before it (a rollover may have closed it)."""
        return tuple((account, day) for account in accounts for day in self.ledger.kept_days(account, last=2))

    def _trading_day_start(self) -> datetime | None:
        day = self.ledger.trading_day
        return day.start if day is not None else None

    def _view(self, position: Position) -> PositionView:
        mark = self.ledger.mark(position.instrument)
        return PositionView(position=position, unrealized_pnl=position.unrealized_at(mark),
                            mark_price=position.mark_price(mark))

    def _event(self, position: Position, *, cause: str) -> PositionChange:
        view = self._view(position)
        context = current_trace_context()
        return PositionChange(position=position, unrealized_pnl=view.unrealized_pnl, mark_price=view.mark_price,
                              cause=cause, traceparent=context.traceparent, tracestate=context.tracestate)

    async def close(self) -> None:
        self.changes.close()


def _differences(account: str, ledger: Mapping[str, Decimal],
                 broker: Mapping[str, BrokerPosition]) -> list[Difference]:
    found = []
    for instrument in sorted(set(ledger) | set(broker)):
        ours = ledger.get(instrument, ZERO)
        theirs = broker[instrument].quantity if instrument in broker else ZERO
        if ours != theirs:
            found.append(Difference(account=account, instrument=instrument, ledger_quantity=ours,
                                    broker_quantity=theirs))
    return found


def _sample(figures: AccountFigures, moment: datetime) -> EquitySample:
    return EquitySample(account=figures.account, time=moment, equity=figures.equity, balance=figures.balance,
                        drawdown=figures.drawdown)
