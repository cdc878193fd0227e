"""Where orders, order events and fills are kept: PostgreSQL (schema `orders`) or memory.

Both stores implement `OrderStore`. Seqs of events and fills are handed in by the
engine, which assigns them one by one under its lock, so the streams have no gaps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import asyncpg

from services.common.vocabulary import OrderType, Side, StrategyRole, TimeInForce
from services.order.intents import Intent
from services.order.records import (FillEvent, FillRecord, OrderEvent, OrderRecord, TraceRef, order_from_json,
                                    order_id_of, order_to_json)
from services.order.states import OPEN, IN_FLIGHT, OrderState

SCHEMA = "orders"
MIGRATIONS = Path(__file__).with_name("migrations")
UNFINISHED = tuple(s.value for s in (*IN_FLIGHT, *OPEN))


class OrderStore(Protocol):
    async def insert_order(self, order: OrderRecord, event_seq: int, trace: TraceRef) -> OrderRecord | None:
        """Stores a new order (its number assigned here) and its first event; None when the client id is taken."""

    async def update_order(self, order: OrderRecord, event_seq: int, trace: TraceRef) -> None: ...

    async def record_fill(self, fill: FillRecord, order: OrderRecord, event_seq: int, trace: TraceRef) -> bool:
        """Stores the fill, the order after it and the event together; False when broker_fill_id is known."""

    async def by_client_id(self, client_order_id: str) -> OrderRecord | None: ...

    async def by_number(self, number: int) -> OrderRecord | None: ...

    async def fills_of(self, number: int) -> list[FillRecord]: ...

    async def list_orders(self, *, strategy_slug: str, instrument: str, states: Iterable[OrderState], limit: int,
                          before_number: int | None) -> list[OrderRecord]: ...

    async def unfinished(self) -> list[OrderRecord]: ...

    async def net_positions(self) -> dict[tuple[str, str, str], Decimal]:
        """(account, strategy, instrument) -> signed quantity, from the fills."""

    async def last_seqs(self) -> tuple[int, int]:
        """(last order-event seq, last fill seq)."""

    async def oldest_event_seq(self) -> int | None: ...

    def order_events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, OrderEvent]]: ...

    async def oldest_fill_seq(self) -> int | None: ...

    def fill_events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, FillEvent]]: ...


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

    async def insert_order(self, order, event_seq, trace):
        if order.intent.client_order_id in self._by_client:
            return None
        stored = order.with_changes(number=len(self._orders) + 1)
        self._orders[stored.number] = stored
        self._by_client[order.intent.client_order_id] = stored.number
        self._events.append((event_seq, OrderEvent(stored, trace)))
        return stored

    async def update_order(self, order, event_seq, trace):
        self._orders[order.number] = order
        self._events.append((event_seq, OrderEvent(order, trace)))

    async def record_fill(self, fill, order, event_seq, trace):
        if fill.broker_fill_id in self._broker_fill_ids:
            return False
        self._broker_fill_ids.add(fill.broker_fill_id)
        self._fills.append(fill)
        self._fill_traces[fill.seq] = trace
        await self.update_order(order, event_seq, trace)
        return True

    async def by_client_id(self, client_order_id):
        number = self._by_client.get(client_order_id)
        return None if number is None else self._orders[number]

    async def by_number(self, number):
        return self._orders.get(number)

    async def fills_of(self, number):
        order_id = order_id_of(number)
        return [f for f in self._fills if f.order_id == order_id]

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

    async def net_positions(self):
        book: dict[tuple[str, str, str], Decimal] = {}
        for f in self._fills:
            key = (f.account, f.strategy_slug, f.instrument)
            book[key] = book.get(key, Decimal(0)) + f.signed_quantity
        return book

    async def last_seqs(self):
        return (self._events[-1][0] if self._events else 0, self._fills[-1].seq if self._fills else 0)

    async def oldest_event_seq(self):
        return self._events[0][0] if self._events else None

    async def order_events(self, after_seq, up_to_seq):
        for seq, event in list(self._events):
            if after_seq < seq <= up_to_seq:
                yield seq, event

    async def oldest_fill_seq(self):
        return self._fills[0].seq if self._fills else None

    async def fill_events(self, after_seq, up_to_seq):
        for fill in list(self._fills):
            if after_seq < fill.seq <= up_to_seq:
                yield fill.seq, FillEvent(fill, self._fill_traces.get(fill.seq, TraceRef()))


_ORDER_FIELDS = ("client_order_id, strategy_slug, role, account, instrument, side, quantity, order_type, limit_price,"
                 " stop_price, time_in_force, reduce_only, note, traceparent, tracestate, state, filled_quantity,"
                 " average_fill_price, commission, reject_rule, reason, broker_order_id, broker, created_time,"
                 " updated_time, decision_time")

# $1 is the number; the fields follow from $2.
_ORDER_PLACEHOLDERS = ", ".join(f"${n}" for n in range(2, len(_ORDER_FIELDS.split(",")) + 2))


def _order_values(o: OrderRecord) -> tuple:
    i = o.intent
    return (i.client_order_id, i.strategy_slug, i.role, i.account, i.instrument, i.side, i.quantity, i.order_type,
            i.limit_price, i.stop_price, i.time_in_force, i.reduce_only, i.note, i.traceparent, i.tracestate,
            o.state.value, o.filled_quantity, o.average_fill_price, o.commission, o.reject_rule, o.reason,
            o.broker_order_id, o.broker, o.created_time, o.updated_time, i.decision_time)


def _order_from_row(row) -> OrderRecord:
    intent = Intent(client_order_id=row["client_order_id"], strategy_slug=row["strategy_slug"], role=StrategyRole(row["role"]),
                    instrument=row["instrument"], side=Side(row["side"]), quantity=row["quantity"],
                    order_type=OrderType(row["order_type"]), limit_price=row["limit_price"],
                    stop_price=row["stop_price"], time_in_force=TimeInForce(row["time_in_force"]), reduce_only=row["reduce_only"], account=row["account"],
                    note=row["note"], traceparent=row["traceparent"], tracestate=row["tracestate"],
                    decision_time=row["decision_time"])
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


class PostgresOrderStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def _event(self, conn, order: OrderRecord, event_seq: int, trace: TraceRef) -> None:
        await conn.execute(
            "INSERT INTO orders.order_events (seq, order_number, strategy_slug, snapshot, traceparent, tracestate)"
            " VALUES ($1, $2, $3, $4::jsonb, $5, $6)",
            event_seq, order.number, order.intent.strategy_slug, order_to_json(order), trace.traceparent,
            trace.tracestate)

    async def insert_order(self, order, event_seq, trace):
        async with self._pool.acquire() as conn, conn.transaction():
            number = await conn.fetchval("SELECT nextval('orders.order_numbers')")
            stored = order.with_changes(number=number)
            inserted = await conn.fetchval(
                f"INSERT INTO orders.orders (number, {_ORDER_FIELDS}) VALUES ($1, {_ORDER_PLACEHOLDERS})"
                " ON CONFLICT (client_order_id) DO NOTHING RETURNING number", number, *_order_values(stored))
            if inserted is None:
                return None
            await self._event(conn, stored, event_seq, trace)
            return stored

    async def _update(self, conn, order: OrderRecord) -> None:
        await conn.execute(
            "UPDATE orders.orders SET state=$2, filled_quantity=$3, average_fill_price=$4, commission=$5,"
            " reject_rule=$6, reason=$7, broker_order_id=$8, broker=$9, updated_time=$10 WHERE number=$1",
            order.number, order.state.value, order.filled_quantity, order.average_fill_price, order.commission,
            order.reject_rule, order.reason, order.broker_order_id, order.broker, order.updated_time)

    async def update_order(self, order, event_seq, trace):
        # One statement (atomic on its own): the hot path of every submit writes two or three of these.
        async with self._pool.acquire() as conn:
            await conn.execute(
                "WITH changed AS (UPDATE orders.orders SET state=$2, filled_quantity=$3, average_fill_price=$4,"
                " commission=$5, reject_rule=$6, reason=$7, broker_order_id=$8, broker=$9, updated_time=$10"
                " WHERE number=$1 RETURNING number)"
                " INSERT INTO orders.order_events (seq, order_number, strategy_slug, snapshot, traceparent, tracestate)"
                " SELECT $11, number, $12, $13::jsonb, $14, $15 FROM changed",
                order.number, order.state.value, order.filled_quantity, order.average_fill_price, order.commission,
                order.reject_rule, order.reason, order.broker_order_id, order.broker, order.updated_time,
                event_seq, order.intent.strategy_slug, order_to_json(order), trace.traceparent, trace.tracestate)

    async def record_fill(self, fill, order, event_seq, trace):
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO orders.fills (seq, broker_fill_id, order_number, client_order_id, strategy_slug, account,"
                " instrument, side, quantity, price, commission, time, traceparent, tracestate)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)"
                " ON CONFLICT (broker_fill_id) DO NOTHING RETURNING seq",
                fill.seq, fill.broker_fill_id, order.number, fill.client_order_id, fill.strategy_slug, fill.account,
                fill.instrument, fill.side, fill.quantity, fill.price, fill.commission, fill.time,
                trace.traceparent, trace.tracestate)
            if inserted is None:
                return False
            await self._update(conn, order)
            await self._event(conn, order, event_seq, trace)
            return True

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

    async def net_positions(self):
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT account, strategy_slug, instrument,"
                " sum(CASE WHEN side = 'buy' THEN quantity ELSE -quantity END) AS net"
                " FROM orders.fills GROUP BY account, strategy_slug, instrument")
        return {(r["account"], r["strategy_slug"], r["instrument"]): r["net"] for r in rows}

    async def last_seqs(self):
        async with self._pool.acquire() as conn:
            events = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM orders.order_events")
            fills = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM orders.fills")
        return events, fills

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
