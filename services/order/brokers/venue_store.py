"""The paper venue's book in PostgreSQL (schema `paper_venue`), so it outlives the order process.

Writes go through one group-commit writer (many submits' acceptances and a quote's fills
in one statement). The store is given a pool of its own whose sessions run with
`synchronous_commit = off`: the paper venue stands for an exchange, and what it must
survive is the order process being killed (kill -9), which it does, because PostgreSQL
has the rows; a crash of PostgreSQL itself may lose its last few milliseconds of
acceptances, which is what a venue losing an order looks like, and the order plane's
recovery reports it. The order plane's own journal never runs with it off.
"""

from __future__ import annotations

import functools
from pathlib import Path

import asyncpg

from services.common.db import apply_migrations, as_columns, unnest_sql
from services.common.group_commit import GroupCommit
from services.order.brokers.base import BrokerFill, BrokerOrder
from services.order.brokers.paper import VenueOrder

SCHEMA = "paper_venue"
MIGRATIONS = Path(__file__).with_name("venue_migrations")

_ORDER_COLUMNS = ("number, client_order_id, account, instrument, side, quantity, order_type, limit_price, "
                  "stop_price, time_in_force, state, filled_quantity, reference_time, triggered, reason, oco_group, "
                  "trail_distance, trail_stop")
_ORDER_TYPES = ("bigint", "text", "text", "text", "text", "numeric", "text", "numeric", "numeric", "text", "text",
                "numeric", "timestamptz", "boolean", "text", "text", "numeric", "numeric")
_FILL_COLUMNS = "broker_fill_id, client_order_id, quantity, price, commission, time"
_FILL_TYPES = ("text", "text", "numeric", "numeric", "numeric", "timestamptz")
_SAVE_COLUMNS = ("client_order_id", "state", "filled_quantity", "reference_time", "triggered", "reason", "trail_stop")
_SAVE_TYPES = ("text", "text", "numeric", "timestamptz", "boolean", "text", "numeric")


@functools.lru_cache(maxsize=None)
def _write_sql(accepts: bool, fills: bool, saves: bool) -> str:
    """One statement for a batch's acceptances, fills and order changes, holding only the parts the
    batch has (a submit burst is acceptances alone, a quote's fills are fills and changes): fewer
    parameters to encode and less to plan on every commit. Answers the client ids it accepted."""
    at, parts = 1, []
    if accepts:
        parts.append(f"accepted AS (INSERT INTO paper_venue.orders ({_ORDER_COLUMNS}) SELECT * FROM"
                     f" {unnest_sql(at, _ORDER_TYPES)} ON CONFLICT (client_order_id) DO NOTHING"
                     " RETURNING client_order_id)")
        at += len(_ORDER_TYPES)
    if fills:
        parts.append(f"filled AS (INSERT INTO paper_venue.fills ({_FILL_COLUMNS}) SELECT * FROM"
                     f" {unnest_sql(at, _FILL_TYPES)} ON CONFLICT DO NOTHING)")
        at += len(_FILL_TYPES)
    if saves:
        parts.append("saved AS (UPDATE paper_venue.orders o SET " + ", ".join(f"{c} = u.{c}" for c in _SAVE_COLUMNS[1:])
                     + f" FROM {unnest_sql(at, _SAVE_TYPES)} AS u({', '.join(_SAVE_COLUMNS)})"
                     " WHERE o.client_order_id = u.client_order_id)")
    answer = "SELECT client_order_id FROM accepted" if accepts else "SELECT NULL::text WHERE false"
    return (f"WITH {', '.join(parts)} " if parts else "") + answer


class PostgresVenueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._writer: GroupCommit = GroupCommit(self._write, name="paper venue")

    @classmethod
    async def open(cls, pool: asyncpg.Pool) -> "PostgresVenueStore":
        await apply_migrations(pool, SCHEMA, MIGRATIONS)
        store = cls(pool)
        store._writer.start()
        return store

    async def close(self) -> None:
        await self._writer.stop()

    async def load(self) -> tuple[list[VenueOrder], int]:
        working = await self._orders("WHERE state IN ('new', 'partially_filled')")
        async with self._pool.acquire() as conn:
            last = await conn.fetchval("SELECT coalesce(max(number), 0) FROM paper_venue.orders")
        return working, last

    async def accept(self, order: VenueOrder) -> bool:
        return await self._writer.commit(("accept", order, None))

    async def save(self, order: VenueOrder, new_fill: BrokerFill | None = None) -> None:
        await self._writer.commit(("save", order, new_fill))

    async def _write(self, entries) -> list[object]:
        results: list[object] = []
        for start, stop in _rounds(entries):
            results.extend(await self._write_round(entries[start:stop]))
        return results

    async def _write_round(self, entries) -> list[object]:
        accepts = [(order.number, order.order.client_order_id, order.order.account, order.order.instrument,
                    order.order.side, order.order.quantity, order.order.order_type, order.order.limit_price,
                    order.order.stop_price, order.order.time_in_force, order.state, order.filled,
                    order.reference_time, order.triggered, order.reason, order.order.oco_group,
                    order.order.trail_distance, order.trail_stop)
                   for kind, order, _ in entries if kind == "accept"]
        fills = [(f.broker_fill_id, f.client_order_id, f.quantity, f.price, f.commission, f.time)
                 for kind, _, f in entries if kind == "save" and f is not None]
        saves = [(o.order.client_order_id, o.state, o.filled, o.reference_time, o.triggered, o.reason, o.trail_stop)
                 for kind, o, _ in entries if kind == "save"]
        args = [*(as_columns(accepts, len(_ORDER_TYPES)) if accepts else ()),
                *(as_columns(fills, len(_FILL_TYPES)) if fills else ()),
                *(as_columns(saves, len(_SAVE_TYPES)) if saves else ())]
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_write_sql(bool(accepts), bool(fills), bool(saves)), *args)
        accepted = {r[0] for r in rows}
        return [order.order.client_order_id in accepted if kind == "accept" else None for kind, order, _ in entries]

    async def get(self, client_order_id: str) -> VenueOrder | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM paper_venue.orders WHERE client_order_id = $1",
                                      client_order_id)
            if row is None:
                return None
            fills = await conn.fetch("SELECT * FROM paper_venue.fills WHERE client_order_id = $1"
                                     " ORDER BY time, broker_fill_id", client_order_id)
        return _venue_order(row, fills)

    async def all_orders(self) -> list[VenueOrder]:
        return await self._orders("")

    async def count(self) -> int:
        async with self._pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM paper_venue.orders")

    async def _orders(self, where: str) -> list[VenueOrder]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_ORDER_COLUMNS} FROM paper_venue.orders {where} ORDER BY number")
            fills = await conn.fetch("SELECT * FROM paper_venue.fills ORDER BY time, broker_fill_id")
        by_order: dict[str, list] = {}
        for fill in fills:
            by_order.setdefault(fill["client_order_id"], []).append(fill)
        return [_venue_order(row, by_order.get(row["client_order_id"], [])) for row in rows]


def _rounds(entries) -> list[tuple[int, int]]:
    """Splits where one order appears twice: sibling statements of one write cannot see each other's rows."""
    rounds, start, seen = [], 0, set()
    for i, (_, order, _) in enumerate(entries):
        cid = order.order.client_order_id
        if cid in seen:
            rounds.append((start, i))
            start, seen = i, set()
        seen.add(cid)
    rounds.append((start, len(entries)))
    return rounds


def _venue_order(row, fills) -> VenueOrder:
    order = BrokerOrder(client_order_id=row["client_order_id"], account=row["account"], instrument=row["instrument"],
                        side=row["side"], quantity=row["quantity"], order_type=row["order_type"],
                        limit_price=row["limit_price"], stop_price=row["stop_price"],
                        time_in_force=row["time_in_force"], oco_group=row["oco_group"],
                        trail_distance=row["trail_distance"])
    return VenueOrder(number=row["number"], order=order, state=row["state"], filled=row["filled_quantity"],
                      reference_time=row["reference_time"], triggered=row["triggered"], reason=row["reason"],
                      trail_stop=row["trail_stop"],
                      fills=[BrokerFill(broker_fill_id=f["broker_fill_id"], client_order_id=f["client_order_id"],
                                        quantity=f["quantity"], price=f["price"], commission=f["commission"],
                                        time=f["time"]) for f in fills])
