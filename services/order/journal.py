"""The journal: the order plane's single writer of orders, order events and fills.

Everything that changes an order goes through here as an entry (a new order, a state
move, a fill). The journal assigns order numbers and the seqs of events and fills,
writes many callers' entries in one group commit, and only after the commit moves its
memory (the seqs, the working orders, the own book) and publishes the events. So:

- a subscriber never sees an event that is not stored, and after a restart the
  streams resume exactly where they were (seqs come from the store at start);
- a caller that gives up (client deadline, disconnect) cannot stop a write half-way:
  the entry belongs to the writer task, and memory and database move together;
- a unique key (client order id, broker fill id) is the idempotency check. When a batch
  hits one, nothing was written; the journal asks the store which entries are already
  stored, answers those as such and writes the rest.

When a commit's outcome is unknown (the connection broke mid-statement), the journal
stops taking new orders, asks the store how far it got, and either publishes the
batch (it was stored) or writes it again (it was not). If the store's marks match
neither, memory and database disagree in a way the journal cannot repair: it says so
(`problem`), the plane reports NOT_SERVING, and new orders are refused with a sentence.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from services.common.group_commit import GroupCommit, ImmediateCommit
from services.common.streams import Broadcaster
from services.order.records import FillEvent, FillRecord, OrderEvent, OrderRecord, TraceRef
from services.order.repository import AlreadyStored, EventBackfill, JournalBatch, JournalMarks, OrderStore
from services.order.states import TERMINAL

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order and the states it went through before its first commit (e.g. PENDING_SUBMIT, SUBMITTED).

    Every record has number 0; the journal numbers them. The last one is what is stored.
    """

    states: tuple[OrderRecord, ...]
    trace: TraceRef
    audit: tuple[str, str] | None = None  # (record_id, body): an audit record stored in the same commit


@dataclass(frozen=True, slots=True)
class Move:
    order: OrderRecord  # the order after the move
    trace: TraceRef


@dataclass(frozen=True, slots=True)
class Fill:
    fill: FillRecord  # seq 0; the journal assigns it
    order: OrderRecord  # the order after the fill
    trace: TraceRef


Entry = NewOrder | Move | Fill

#: The answer to a NewOrder whose client id is stored already, and to a Fill recorded before.
ALREADY_STORED = object()


@dataclass(frozen=True, slots=True)
class JournalSettings:
    group_commit: bool = True  # False: write each entry at once (an in-memory store, a backtest)
    max_batch: int = 256
    max_wait_seconds: float = 0.0
    recent_orders: int = 50_000  # finished orders kept in memory for duplicate Submits


class JournalHalted(RuntimeError):
    """The journal does not take new orders right now; the message says why."""


class Journal:
    def __init__(self, store: OrderStore, settings: JournalSettings = JournalSettings()) -> None:
        self._store = store
        self._settings = settings
        self._marks = JournalMarks(0, 0, 0)
        self._working: dict[str, OrderRecord] = {}
        self._recent: collections.OrderedDict[str, OrderRecord] = collections.OrderedDict()
        self._fill_ids: dict[str, set[str]] = {}  # working order client id -> broker fill ids recorded
        self._fill_listeners: list[Callable[[FillRecord], None]] = []
        self._problem_listeners: list[Callable[[str | None], None]] = []
        self._audit_listeners: list[Callable[[], None]] = []
        self.problem: str | None = None
        self.order_events: Broadcaster[OrderEvent] = Broadcaster(name="order events")
        self.fill_events: Broadcaster[FillEvent] = Broadcaster(name="fills")
        factory = GroupCommit if settings.group_commit else ImmediateCommit
        options = dict(max_batch=settings.max_batch, max_wait=settings.max_wait_seconds) if settings.group_commit else {}
        self._committer = factory(self._write, name="order journal", **options)

    # ---- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Loads the marks and the working orders, then starts the writer."""
        self._marks = await self._store.marks()
        store = self._store
        self.order_events = Broadcaster(name="order events", last_seq=self._marks.last_event_seq,
                                        backfill=EventBackfill(store.oldest_event_seq, store.order_events))
        self.fill_events = Broadcaster(name="fills", last_seq=self._marks.last_fill_seq,
                                       backfill=EventBackfill(store.oldest_fill_seq, store.fill_events))
        for order in await store.unfinished():
            self._working[order.intent.client_order_id] = order
            fills = await store.fills_of(order.number)
            self._fill_ids[order.intent.client_order_id] = {f.broker_fill_id for f in fills}
        self._committer.start()

    async def close(self) -> None:
        await self._committer.stop()
        self.order_events.close()
        self.fill_events.close()

    def on_fill(self, listener: Callable[[FillRecord], None]) -> None:
        """Called after each fill is stored, before it is published (the own book, the exposure tail)."""
        self._fill_listeners.append(listener)

    def on_audit_stored(self, listener: Callable[[], None]) -> None:
        """Called after a commit that stored audit records (the outbox's forwarder wakes up)."""
        self._audit_listeners.append(listener)

    def on_problem(self, listener: Callable[[str | None], None]) -> None:
        """Called with a sentence when the journal stops taking orders, and with None when it recovers."""
        self._problem_listeners.append(listener)

    # ---- reads from memory -----------------------------------------------------------------

    def known(self, client_order_id: str) -> OrderRecord | None:
        """The newest stored state of an order this process wrote or loaded, if it still remembers it."""
        return self._working.get(client_order_id) or self._recent.get(client_order_id)

    def working_orders(self) -> list[OrderRecord]:
        """Every order not finished yet (in flight or open), as last stored."""
        return list(self._working.values())

    def recorded_fill_ids(self, client_order_id: str) -> frozenset[str]:
        return frozenset(self._fill_ids.get(client_order_id, ()))

    @property
    def last_fill_seq(self) -> int:
        return self._marks.last_fill_seq

    @property
    def stats(self) -> tuple[int, int]:
        """(commits, entries) so far: entries / commits is the average group size."""
        return self._committer.batches, self._committer.items

    # ---- writes ----------------------------------------------------------------------------

    async def new_order(self, states: Sequence[OrderRecord], trace: TraceRef,
                        audit: tuple[str, str] | None = None) -> OrderRecord | None:
        """Stores a new order (and its audit record, if any); None when its client id is stored already
        (the existing order is the answer, and the audit record is not written)."""
        if self.problem is not None:
            raise JournalHalted(self.problem)
        result = await self._committer.commit(NewOrder(tuple(states), trace, audit))
        return None if result is ALREADY_STORED else result

    async def move(self, order: OrderRecord, trace: TraceRef) -> OrderRecord:
        return await self._committer.commit(Move(order, trace))

    async def record_fill(self, fill: FillRecord, order: OrderRecord, trace: TraceRef) -> FillRecord | None:
        """The stored fill with its seq; None when this broker fill id was recorded before."""
        result = await self._committer.commit(Fill(fill, order, trace))
        return None if result is ALREADY_STORED else result

    # ---- the writer (one task; nothing here is interrupted by a caller) ----------------------

    async def _write(self, entries: Sequence[Entry]) -> list[object]:
        if len(entries) == 1:  # one round (ImmediateCommit: always)
            return await self._write_round(list(entries))
        results: list[object] = [None] * len(entries)
        for start, stop in _rounds(entries):
            round_results = await self._write_round(list(entries[start:stop]))
            results[start:stop] = round_results
        return results

    async def _write_round(self, entries: list[Entry]) -> list[object]:
        """Writes entries that touch distinct orders; returns one result per entry."""
        results: list[object] = [None] * len(entries)
        pending = list(range(len(entries)))
        while pending:
            plan = _Plan.build([entries[i] for i in pending], self._marks)
            try:
                await self._store.write(plan.batch)
            except AlreadyStored:
                stored = await self._already_stored(entries, pending)
                if not stored:
                    self._halt("a unique key of the order tables refused a batch that holds no stored client id "
                               "or fill id: another process may be writing to this database")
                    raise JournalHalted(self.problem)
                for i in stored:
                    results[i] = ALREADY_STORED
                pending = [i for i in pending if i not in stored]
                continue
            except asyncpg.PostgresError as exc:
                if not _refused(exc):
                    if not await self._was_stored(plan, exc):
                        continue
                    self._apply(plan)
                    results_of(plan, pending, results)
                    return results
                # Refused and rolled back (a value the database cannot take): only the entry that
                # carries it fails. Alone, it fails; in company, each entry is tried alone.
                if len(pending) == 1:
                    log.error("the order journal could not store an entry", exc_info=exc)
                    results[pending[0]] = exc
                    return results
                for i in pending:
                    (results[i],) = await self._write_round([entries[i]])
                return results
            except (OSError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
                if not await self._was_stored(plan, exc):
                    continue  # nothing was stored: write the same entries again
            self._apply(plan)
            results_of(plan, pending, results)
            pending = []
        return results

    async def _already_stored(self, entries: list[Entry], pending: list[int]) -> set[int]:
        cids = [entries[i].states[0].intent.client_order_id for i in pending if isinstance(entries[i], NewOrder)]
        fill_ids = [entries[i].fill.broker_fill_id for i in pending if isinstance(entries[i], Fill)]
        taken_cids, taken_fills = await self._store.taken(cids, fill_ids)
        stored, seen = set(), set()
        for i in pending:
            entry = entries[i]
            if isinstance(entry, NewOrder):
                cid = entry.states[0].intent.client_order_id
                if cid in taken_cids or cid in seen:  # two Submits of one new id in one batch: the first wins
                    stored.add(i)
                seen.add(cid)
            elif isinstance(entry, Fill) and entry.fill.broker_fill_id in taken_fills:
                stored.add(i)
        return stored

    async def _was_stored(self, plan: "_Plan", error: BaseException) -> bool:
        """After an ambiguous failure: asks the store whether the batch's statement committed."""
        self._halt(f"the database did not confirm a commit ({type(error).__name__}: {error}); new orders are "
                   "refused until it answers")
        delay = 0.05
        while True:
            try:
                marks = await self._store.marks()
                break
            except Exception as exc:  # the database is still away: keep asking, slowly
                log.warning("order journal waiting for the database", extra={"error": repr(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if marks == plan.marks_after:
            self._recover()
            return True
        if marks == self._marks:
            self._recover()
            return False
        self._halt(f"the order tables hold event seq {marks.last_event_seq} and fill seq {marks.last_fill_seq}, "
                   f"but this plane expected {self._marks.last_event_seq}/{self._marks.last_fill_seq} or "
                   f"{plan.marks_after.last_event_seq}/{plan.marks_after.last_fill_seq}: memory and database "
                   "disagree; restart the order plane to reload from the database")
        raise JournalHalted(self.problem)

    def _apply(self, plan: "_Plan") -> None:
        """After the commit: memory follows the database, then subscribers hear of it."""
        self._marks = plan.marks_after
        for order in plan.stored_orders:
            self._remember(order)
        for fill in plan.stored_fills:
            self._fill_ids.setdefault(fill.client_order_id, set()).add(fill.broker_fill_id)
            for listener in self._fill_listeners:
                listener(fill)
        for kind, seq, payload in plan.publications:
            if kind == "order":
                self.order_events.publish(payload, seq=seq)
            else:
                self.fill_events.publish(payload, seq=seq)
        if plan.batch.audits:
            for listener in self._audit_listeners:
                listener()

    def _remember(self, order: OrderRecord) -> None:
        cid = order.intent.client_order_id
        if order.state in TERMINAL:
            self._working.pop(cid, None)
            self._fill_ids.pop(cid, None)
            self._recent[cid] = order
            self._recent.move_to_end(cid)
            while len(self._recent) > self._settings.recent_orders:
                self._recent.popitem(last=False)
        else:
            self._working[cid] = order

    def _halt(self, problem: str) -> None:
        if self.problem != problem:
            log.error("order journal halted: %s", problem)
        self.problem = problem
        for listener in self._problem_listeners:
            listener(problem)

    def _recover(self) -> None:
        if self.problem is not None:
            log.warning("order journal resumed", extra={"was": self.problem})
        self.problem = None
        for listener in self._problem_listeners:
            listener(None)


class _Plan:
    """One batch with numbers and seqs assigned, and what to publish once it is stored."""

    batch: JournalBatch  # set by build
    marks_after: JournalMarks  # set by build

    def __init__(self) -> None:
        self.results: list[object] = []
        self.stored_orders: list[OrderRecord] = []
        self.stored_fills: list[FillRecord] = []
        self.publications: list[tuple[str, int, object]] = []

    @classmethod
    def build(cls, entries: Sequence[Entry], marks: JournalMarks) -> "_Plan":
        plan = cls()
        number, event_seq, fill_seq = marks.last_number, marks.last_event_seq, marks.last_fill_seq
        new_orders, updates, fills, events, audits = [], [], [], [], []

        def event(order: OrderRecord, trace: TraceRef) -> None:
            nonlocal event_seq
            event_seq += 1
            published = OrderEvent(order, trace)
            events.append((event_seq, published))
            plan.publications.append(("order", event_seq, published))

        for entry in entries:
            if isinstance(entry, NewOrder):
                number += 1
                states = [s.with_changes(number=number) for s in entry.states]
                for state in states:
                    event(state, entry.trace)
                new_orders.append(states[-1])
                plan.stored_orders.append(states[-1])
                plan.results.append(states[-1])
                if entry.audit is not None:
                    audits.append(entry.audit)
            elif isinstance(entry, Move):
                event(entry.order, entry.trace)
                updates.append(entry.order)
                plan.stored_orders.append(entry.order)
                plan.results.append(entry.order)
            else:
                fill_seq += 1
                fill = entry.fill.with_seq(fill_seq)
                fills.append((fill, entry.order.number, entry.trace))
                plan.stored_fills.append(fill)
                # The fill is published before the order event it causes, so a WatchFills
                # subscriber that also follows orders never sees FILLED without its fill.
                plan.publications.append(("fill", fill_seq, FillEvent(fill, entry.trace)))
                event(entry.order, entry.trace)
                updates.append(entry.order)
                plan.stored_orders.append(entry.order)
                plan.results.append(fill)
        plan.batch = JournalBatch(new_orders=new_orders, updates=updates, fills=fills, events=events, audits=audits)
        plan.marks_after = JournalMarks(number, event_seq, fill_seq)
        return plan


def results_of(plan: _Plan, pending: list[int], results: list[object]) -> None:
    for i, result in zip(pending, plan.results, strict=True):
        results[i] = result


def _refused(error: asyncpg.PostgresError) -> bool:
    """The statement was refused and rolled back because of what it carried (data, a constraint, our
    SQL), so writing it again would fail again. Anything else (a connection lost, the server
    shutting down or out of resources) leaves the outcome open."""
    state = getattr(error, "sqlstate", "") or ""
    return state[:2] in ("22", "23", "42")


def _rounds(entries: Sequence[Entry]) -> list[tuple[int, int]]:
    """Splits a batch where an order would be touched twice, so each round touches an order once."""
    rounds, start, seen = [], 0, set()
    for i, entry in enumerate(entries):
        key = _order_key(entry)
        if key in seen:
            rounds.append((start, i))
            start, seen = i, set()
        seen.add(key)
    rounds.append((start, len(entries)))
    return rounds


def _order_key(entry: Entry) -> str:
    if isinstance(entry, NewOrder):
        return entry.states[0].intent.client_order_id
    return entry.order.intent.client_order_id


__all__ = ["Journal", "JournalSettings", "JournalHalted", "NewOrder", "Move", "Fill", "ALREADY_STORED"]
