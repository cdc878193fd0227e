"""Where orders, order events and fills are kept: PostgreSQL (schema `orders`) or memory.

Both stores implement `OrderStore`. The journal (services/order/journal.py) is the only
writer: it assigns order numbers and the seqs of events and fills, and hands a whole
group commit to `write`, which stores all of it or nothing. The unique keys (client
order id, broker fill id) are the idempotency checks: there is no SELECT before a write.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import asyncpg

from services.common.db import as_columns, unnest_sql
from services.common.vocabulary import OrderType, Side, StrategyRole, TimeInForce
from services.order.intents import Intent
from services.order.records import (FillEvent, FillRecord, FinancingRecord, OrderEvent, OrderRecord, TraceRef,
                                    order_from_json, order_id_of, order_to_json)
from services.order.states import OPEN, IN_FLIGHT, OrderState

SCHEMA = "orders"
MIGRATIONS = Path(__file__).with_name("migrations")
UNFINISHED = tuple(s.value for s in (*IN_FLIGHT, *OPEN))


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """Everything one group commit writes, numbers and seqs already assigned by the journal.

    Each order appears at most once among `new_orders` and `updates` (the journal splits a
    batch that would touch one order twice); `events` hold one row per state an order went
    through, in seq order.
    """

    new_orders: Sequence[OrderRecord] = ()
    updates: Sequence[OrderRecord] = ()
    fills: Sequence[tuple[FillRecord, int, TraceRef]] = ()  # (fill, order number, trace)
    events: Sequence[tuple[int, OrderEvent]] = ()
    audits: Sequence[tuple[str, str]] = ()  # (record_id, body) for orders.audit_outbox (services/common/audit.py)


@dataclass(frozen=True, slots=True)
class JournalMarks:
    """The highest order number, event seq and fill seq stored (0 when none)."""

    last_number: int
    last_event_seq: int
    last_fill_seq: int


class AlreadyStored(Exception):
    """A client id or a broker fill id of the batch is stored already; nothing of the batch was written."""


class OrderStore(Protocol):
    async def write(self, batch: JournalBatch) -> None:
        """Writes the whole batch atomically, or nothing (AlreadyStored on a unique key)."""

    async def taken(self, client_order_ids: Sequence[str], broker_fill_ids: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of these client ids and broker fill ids are stored already."""

    async def marks(self) -> JournalMarks: ...

    async def by_client_id(self, client_order_id: str) -> OrderRecord | None: ...

    async def by_number(self, number: int) -> OrderRecord | None: ...

    async def fills_of(self, number: int) -> list[FillRecord]: ...

    async def list_orders(self, *, strategy_slug: str, instrument: str, states: Iterable[OrderState], limit: int,
                          before_number: int | None) -> list[OrderRecord]: ...

    async def unfinished(self) -> list[OrderRecord]: ...

    async def net_positions(self) -> dict[tuple[str, str, str], Decimal]:
        """(account, strategy, instrument) -> signed quantity, from the fills."""

    async def oldest_event_seq(self) -> int | None: ...

    def order_events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, OrderEvent]]: ...

    async def oldest_fill_seq(self) -> int | None: ...

    def fill_events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, FillEvent]]: ...

    async def fill_by_broker_id(self, broker_fill_id: str) -> FillRecord | None: ...

    async def record_financing(self, record: FinancingRecord) -> bool:
        """Stores it once per financing id; False when it was stored before."""

    async def financing_after(self, after_seq: int, limit: int) -> tuple[list[FinancingRecord], int]:
        """Up to `limit` records after `after_seq`, oldest first, and the highest seq stored."""


class EventBackfill:
    """Adapts a store to services.common.streams.Backfill for one stream."""

    def __init__(self, oldest, events) -> None:
        self.oldest_seq = oldest
        self.events = events


class MemoryOrderStore:
    """The same store in memory, for backtests and unit tests."""

    def __init__(self) -> None:
        self._orders: dict[int, OrderRecord] = {}
        self._by_client: dict[str, int] = {}
        self._events: list[tuple[int, OrderEvent]] = []
        self._fills: list[FillRecord] = []
        self._fill_traces: dict[int, TraceRef] = {}
        self._broker_fill_ids: set[str] = set()
        self._fills_by_order: dict[str, list[FillRecord]] = {}  # fills_of without a scan (backtests call it often)
        self.audit_rows: list[tuple[str, str]] = []
        self._financing: list[FinancingRecord] = []

    async def write(self, batch):
        cids = [o.intent.client_order_id for o in batch.new_orders]
        fill_ids = [f.broker_fill_id for f, _, _ in batch.fills]
        taken_cids, taken_fills = await self.taken(cids, fill_ids)
        if taken_cids or taken_fills or len(set(cids)) < len(cids) or len(set(fill_ids)) < len(fill_ids):
            raise AlreadyStored(f"already stored: {sorted(taken_cids | taken_fills)}")
        for order in (*batch.new_orders, *batch.updates):
            self._orders[order.number] = order
            self._by_client[order.intent.client_order_id] = order.number
        for fill, _, trace in batch.fills:
            self._broker_fill_ids.add(fill.broker_fill_id)
            self._fills.append(fill)
            self._fills_by_order.setdefault(fill.order_id, []).append(fill)
            self._fill_traces[fill.seq] = trace
        self._events.extend(batch.events)
        self.audit_rows.extend(batch.audits)

    async def taken(self, client_order_ids, broker_fill_ids):
        return ({c for c in client_order_ids if c in self._by_client},
                {f for f in broker_fill_ids if f in self._broker_fill_ids})

    async def marks(self):
        return JournalMarks(last_number=max(self._orders, default=0),
                            last_event_seq=self._events[-1][0] if self._events else 0,
                            last_fill_seq=self._fills[-1].seq if self._fills else 0)

    async def by_client_id(self, client_order_id):
        number = self._by_client.get(client_order_id)
        return None if number is None else self._orders[number]

    async def by_number(self, number):
        return self._orders.get(number)

    async def fills_of(self, number):
        return list(self._fills_by_order.get(order_id_of(number), ()))

    async def list_orders(self, *, strategy_slug, instrument, states, limit, before_number):
        wanted = set(states)
        found = [o for n, o in sorted(self._orders.items(), reverse=True)
                 if (before_number is None or n < before_number)
                 and (not strategy_slug or o.intent.strategy_slug == strategy_slug)
                 and (not instrument or o.intent.instrument == instrument)
                 and (not wanted or o.state in wanted)]
        return found[:limit]

    async def unfinished(self):
        return [o for _, o in sorted(self._orders.items()) if o.state.value in UNFINISHED]

    async def fill_by_broker_id(self, broker_fill_id):
        return next((f for f in self._fills if f.broker_fill_id == broker_fill_id), None)

    async def record_financing(self, record):
        if any(f.financing_id == record.financing_id for f in self._financing):
            return False
        self._financing.append(dataclasses.replace(record, seq=len(self._financing) + 1))
        return True

    async def financing_after(self, after_seq, limit):
        return [f for f in self._financing if f.seq > after_seq][:limit], len(self._financing)

    async def net_positions(self):
        book: dict[tuple[str, str, str], Decimal] = {}
        for f in self._fills:
            key = (f.account, f.strategy_slug, f.instrument)
            book[key] = book.get(key, Decimal(0)) + f.signed_quantity
        return book

    async def oldest_event_seq(self):
        return self._events[0][0] if self._events else None

    async def order_events(self, after_seq, up_to_seq):
        start = bisect.bisect_right(self._events, after_seq, key=lambda e: e[0])
        for seq, event in self._events[start:]:
            if seq > up_to_seq:
                return
            yield seq, event

    async def oldest_fill_seq(self):
        return self._fills[0].seq if self._fills else None

    async def fill_events(self, after_seq, up_to_seq):
        start = bisect.bisect_right(self._fills, after_seq, key=lambda f: f.seq)
        for fill in self._fills[start:]:
            if fill.seq > up_to_seq:
                return
            yield fill.seq, FillEvent(fill, self._fill_traces.get(fill.seq, TraceRef()))


_ORDER_FIELDS = ("client_order_id, strategy_slug, role, account, instrument, side, quantity, order_type, limit_price,"
                 " stop_price, time_in_force, reduce_only, note, traceparent, tracestate, state, filled_quantity,"
                 " average_fill_price, commission, reject_rule, reason, broker_order_id, broker, created_time,"
                 " updated_time, decision_time, stop_loss_distance, take_profit_distance, no_pyramiding,"
                 " trailing_stop_distance, trail_distance")

# $1 is the number; the fields follow from $2.
_ORDER_PLACEHOLDERS = ", ".join(f"${n}" for n in range(2, len(_ORDER_FIELDS.split(",")) + 2))


def _order_values(o: OrderRecord) -> tuple:
    i = o.intent
    return (i.client_order_id, i.strategy_slug, i.role, i.account, i.instrument, i.side, i.quantity, i.order_type,
            i.limit_price, i.stop_price, i.time_in_force, i.reduce_only, i.note, i.traceparent, i.tracestate,
            o.state.value, o.filled_quantity, o.average_fill_price, o.commission, o.reject_rule, o.reason,
            o.broker_order_id, o.broker, o.created_time, o.updated_time, i.decision_time, i.stop_loss_distance,
            i.take_profit_distance, i.no_pyramiding, i.trailing_stop_distance, i.trail_distance)


def _order_from_row(row) -> OrderRecord:
    intent = Intent(client_order_id=row["client_order_id"], strategy_slug=row["strategy_slug"], role=StrategyRole(row["role"]),
                    instrument=row["instrument"], side=Side(row["side"]), quantity=row["quantity"],
                    order_type=OrderType(row["order_type"]), limit_price=row["limit_price"],
                    stop_price=row["stop_price"], time_in_force=TimeInForce(row["time_in_force"]), reduce_only=row["reduce_only"], account=row["account"],
                    note=row["note"], traceparent=row["traceparent"], tracestate=row["tracestate"],
                    decision_time=row["decision_time"], stop_loss_distance=row["stop_loss_distance"],
                    take_profit_distance=row["take_profit_distance"], no_pyramiding=row["no_pyramiding"],
                    trailing_stop_distance=row["trailing_stop_distance"], trail_distance=row["trail_distance"])
    return OrderRecord(number=row["number"], intent=intent, state=OrderState(row["state"]),
                       created_time=row["created_time"], updated_time=row["updated_time"],
                       filled_quantity=row["filled_quantity"], average_fill_price=row["average_fill_price"],
                       commission=row["commission"], reject_rule=row["reject_rule"], reason=row["reason"],
                       broker_order_id=row["broker_order_id"], broker=row["broker"])


def _fill_from_row(row) -> FillRecord:
    return FillRecord(seq=row["seq"], order_id=order_id_of(row["order_number"]),
                      client_order_id=row["client_order_id"], strategy_slug=row["strategy_slug"],
                      account=row["account"], instrument=row["instrument"], side=Side(row["side"]),
                      quantity=row["quantity"], price=row["price"], commission=row["commission"], time=row["time"],
                      broker_fill_id=row["broker_fill_id"])


_ORDER_TYPES = ("bigint", "text", "text", "text", "text", "text", "text", "numeric", "text", "numeric", "numeric",
                "text", "boolean", "text", "text", "text", "text", "numeric", "numeric", "numeric", "text", "text",
                "text", "text", "timestamptz", "timestamptz", "timestamptz", "numeric",
                "numeric", "boolean", "numeric", "numeric")  # number, then _ORDER_FIELDS
# One type per column: a field added without its type would only fail at the first write.
assert len(_ORDER_TYPES) == 1 + len(_ORDER_FIELDS.split(",")), "orders: a column lacks its type"
_UPDATE_FIELDS = ("number", "state", "filled_quantity", "average_fill_price", "commission", "reject_rule", "reason",
                  "broker_order_id", "broker", "updated_time")
_UPDATE_TYPES = ("bigint", "text", "numeric", "numeric", "numeric", "text", "text", "text", "text", "timestamptz")
_FILL_FIELDS = ("seq", "broker_fill_id", "order_number", "client_order_id", "strategy_slug", "account", "instrument",
                "side", "quantity", "price", "commission", "time", "traceparent", "tracestate")
_FILL_TYPES = ("bigint", "text", "bigint", "text", "text", "text", "text", "text", "numeric", "numeric", "numeric",
               "timestamptz", "text", "text")
_EVENT_FIELDS = ("seq", "order_number", "strategy_slug", "snapshot", "traceparent", "tracestate")
_EVENT_TYPES = ("bigint", "bigint", "text", "json", "text", "text")
_AUDIT_TYPES = ("text", "jsonb")


@functools.lru_cache(maxsize=None)
def _write_batch_sql(new_orders: bool, moved: bool, fills: bool, audits: bool) -> str:
    """Inserts new orders, updates moved ones, inserts fills and events: data-modifying CTEs of one statement.

    Only the parts a batch has are in its statement (most batches are one kind: new orders, or
    moves): fewer parameters to encode and less for PostgreSQL to plan, on every commit. Sibling
    CTEs cannot see each other's rows, which is fine: an order is never both new and updated in
    one batch, and the foreign keys are checked at the end of the statement.
    """
    at, parts = 1, []
    if new_orders:
        parts.append(f"new_orders AS (INSERT INTO orders.orders (number, {_ORDER_FIELDS})"
                     f" SELECT * FROM {unnest_sql(at, _ORDER_TYPES)})")
        at += len(_ORDER_TYPES)
    if moved:
        sets = ", ".join(f"{name} = u.{name}" for name in _UPDATE_FIELDS[1:])
        parts.append(f"moved AS (UPDATE orders.orders o SET {sets} FROM {unnest_sql(at, _UPDATE_TYPES)}"
                     f" AS u({', '.join(_UPDATE_FIELDS)}) WHERE o.number = u.number)")
        at += len(_UPDATE_TYPES)
    if fills:
        parts.append(f"new_fills AS (INSERT INTO orders.fills ({', '.join(_FILL_FIELDS)})"
                     f" SELECT * FROM {unnest_sql(at, _FILL_TYPES)})")
        at += len(_FILL_TYPES)
    if audits:
        parts.append(f"audited AS (INSERT INTO orders.audit_outbox (record_id, body)"
                     f" SELECT * FROM {unnest_sql(at, _AUDIT_TYPES)})")
        at += len(_AUDIT_TYPES)
    head = f"WITH {', '.join(parts)} " if parts else ""
    return head + f"INSERT INTO orders.order_events ({', '.join(_EVENT_FIELDS)}) SELECT * FROM {unnest_sql(at, _EVENT_TYPES)}"


def _write_batch(batch: JournalBatch) -> tuple[str, list[list]]:
    """The statement for this batch's parts and its parameters, one array per column."""
    args: list[list] = []
    if batch.new_orders:
        args += as_columns([(o.number, *_order_values(o)) for o in batch.new_orders], len(_ORDER_TYPES))
    if batch.updates:
        args += as_columns([(o.number, o.state.value, o.filled_quantity, o.average_fill_price, o.commission,
                             o.reject_rule, o.reason, o.broker_order_id, o.broker, o.updated_time)
                            for o in batch.updates], len(_UPDATE_TYPES))
    if batch.fills:
        args += as_columns([(f.seq, f.broker_fill_id, number, f.client_order_id, f.strategy_slug, f.account,
                             f.instrument, f.side, f.quantity, f.price, f.commission, f.time, t.traceparent,
                             t.tracestate) for f, number, t in batch.fills], len(_FILL_TYPES))
    if batch.audits:
        args += as_columns(list(batch.audits), len(_AUDIT_TYPES))
    args += as_columns([(seq, e.order.number, e.order.intent.strategy_slug, order_to_json(e.order),
                         e.trace.traceparent, e.trace.tracestate) for seq, e in batch.events], len(_EVENT_TYPES))
    sql = _write_batch_sql(bool(batch.new_orders), bool(batch.updates), bool(batch.fills), bool(batch.audits))
    return sql, args


class PostgresOrderStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, batch):
        # One statement, so one round trip and its own transaction: the group commit's whole cost.
        try:
            async with self._pool.acquire() as conn:
                sql, args = _write_batch(batch)
                await conn.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyStored(exc.detail or str(exc)) from None

    async def taken(self, client_order_ids, broker_fill_ids):
        async with self._pool.acquire() as conn:
            cids = await conn.fetch("SELECT client_order_id FROM orders.orders WHERE client_order_id = ANY($1::text[])",
                                    list(client_order_ids))
            fills = await conn.fetch("SELECT broker_fill_id FROM orders.fills WHERE broker_fill_id = ANY($1::text[])",
                                     list(broker_fill_ids))
        return {r[0] for r in cids}, {r[0] for r in fills}

    async def marks(self):
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT coalesce(max(number), 0) FROM orders.orders) AS number,"
                " (SELECT coalesce(max(seq), 0) FROM orders.order_events) AS event,"
                " (SELECT coalesce(max(seq), 0) FROM orders.fills) AS fill")
        return JournalMarks(last_number=row["number"], last_event_seq=row["event"], last_fill_seq=row["fill"])

    async def _one(self, where: str, value) -> OrderRecord | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT number, {_ORDER_FIELDS} FROM orders.orders WHERE {where} = $1", value)
        return None if row is None else _order_from_row(row)

    async def by_client_id(self, client_order_id):
        return await self._one("client_order_id", client_order_id)

    async def by_number(self, number):
        return await self._one("number", number)

    async def fills_of(self, number):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM orders.fills WHERE order_number = $1 ORDER BY seq", number)
        return [_fill_from_row(r) for r in rows]

    async def list_orders(self, *, strategy_slug, instrument, states, limit, before_number):
        state_values = [s.value for s in states]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT number, {_ORDER_FIELDS} FROM orders.orders"
                " WHERE ($1 = '' OR strategy_slug = $1) AND ($2 = '' OR instrument = $2)"
                " AND (cardinality($3::text[]) = 0 OR state = ANY($3::text[]))"
                " AND ($4::bigint IS NULL OR number < $4) ORDER BY number DESC LIMIT $5",
                strategy_slug, instrument, state_values, before_number, limit)
        return [_order_from_row(r) for r in rows]

    async def unfinished(self):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT number, {_ORDER_FIELDS} FROM orders.orders"
                                    " WHERE state = ANY($1::text[]) ORDER BY number", list(UNFINISHED))
        return [_order_from_row(r) for r in rows]

    async def fill_by_broker_id(self, broker_fill_id):
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM orders.fills WHERE broker_fill_id = $1", broker_fill_id)
        return None if row is None else _fill_from_row(row)

    async def record_financing(self, record):
        async with self._pool.acquire() as conn:
            stored = await conn.fetchval(
                "INSERT INTO orders.financing (financing_id, account, instrument, strategy_slug, amount, currency,"
                " time, broker_fill_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                " ON CONFLICT (financing_id) DO NOTHING RETURNING seq",
                record.financing_id, record.account, record.instrument, record.strategy_slug, record.amount,
                record.currency, record.time, record.broker_fill_id)
        return stored is not None

    async def financing_after(self, after_seq, limit):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM orders.financing WHERE seq > $1 ORDER BY seq LIMIT $2",
                                    after_seq, limit)
            last = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM orders.financing")
        return [FinancingRecord(seq=r["seq"], financing_id=r["financing_id"], account=r["account"],
                                instrument=r["instrument"], strategy_slug=r["strategy_slug"], amount=r["amount"],
                                currency=r["currency"], time=r["time"], broker_fill_id=r["broker_fill_id"])
                for r in rows], last

    async def net_positions(self):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT account, strategy_slug, instrument,"
                " sum(CASE WHEN side = 'buy' THEN quantity ELSE -quantity END) AS net"
                " FROM orders.fills GROUP BY account, strategy_slug, instrument")
        return {(r["account"], r["strategy_slug"], r["instrument"]): r["net"] for r in rows}

    async def oldest_event_seq(self):
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT min(seq) FROM orders.order_events")

    async def order_events(self, after_seq, up_to_seq):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT seq, snapshot::text AS snapshot, traceparent, tracestate"
                                    " FROM orders.order_events WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                                    after_seq, up_to_seq)
        for r in rows:
            yield r["seq"], OrderEvent(order_from_json(r["snapshot"]), TraceRef(r["traceparent"], r["tracestate"]))

    async def oldest_fill_seq(self):
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT min(seq) FROM orders.fills")

    async def fill_events(self, after_seq, up_to_seq):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM orders.fills WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                                    after_seq, up_to_seq)
        for r in rows:
            yield r["seq"], FillEvent(_fill_from_row(r), TraceRef(r["traceparent"], r["tracestate"]))
