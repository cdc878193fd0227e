"""The paper venue's book in PostgreSQL (schema `paper_venue`), so it outlives the order process."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.common.db import apply_migrations
from services.order.brokers.base import BrokerFill, BrokerOrder
from services.order.brokers.paper import VenueOrder

SCHEMA = "paper_venue"
MIGRATIONS = Path(__file__).with_name("venue_migrations")

_ORDER_COLUMNS = ("number, client_order_id, account, instrument, side, quantity, order_type, limit_price, "
                  "stop_price, time_in_force, state, filled_quantity, reference_time, triggered, reason")


class PostgresVenueStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, pool: asyncpg.Pool) -> "PostgresVenueStore":
        await apply_migrations(pool, SCHEMA, MIGRATIONS)
        return cls(pool)

    async def accept(self, order: BrokerOrder, reference_time):
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"INSERT INTO paper_venue.orders (client_order_id, account, instrument, side, quantity, order_type,"
                " limit_price, stop_price, time_in_force, state, reference_time)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,'new',$10)"
                f" ON CONFLICT (client_order_id) DO NOTHING RETURNING {_ORDER_COLUMNS}",
                order.client_order_id, order.account, order.instrument, order.side, order.quantity,
                order.order_type, order.limit_price, order.stop_price, order.time_in_force, reference_time)
            if row is not None:
                return _venue_order(row, []), True
        existing = await self.get(order.client_order_id)
        assert existing is not None  # the conflict proves it exists
        return existing, False

    async def get(self, client_order_id: str) -> VenueOrder | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM paper_venue.orders WHERE client_order_id = $1",
                                      client_order_id)
            if row is None:
                return None
            fills = await conn.fetch("SELECT * FROM paper_venue.fills WHERE client_order_id = $1"
                                     " ORDER BY time, broker_fill_id", client_order_id)
        return _venue_order(row, fills)

    async def open_orders(self) -> list[VenueOrder]:
        return await self._orders("WHERE state IN ('new', 'partially_filled')")

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

    async def save(self, order: VenueOrder, new_fill: BrokerFill | None = None) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if new_fill is not None:
                await conn.execute(
                    "INSERT INTO paper_venue.fills (broker_fill_id, client_order_id, quantity, price, commission, time)"
                    " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
                    new_fill.broker_fill_id, new_fill.client_order_id, new_fill.quantity, new_fill.price,
                    new_fill.commission, new_fill.time)
            await conn.execute(
                "UPDATE paper_venue.orders SET state=$2, filled_quantity=$3, reference_time=$4, triggered=$5,"
                " reason=$6 WHERE client_order_id=$1",
                order.order.client_order_id, order.state, order.filled, order.reference_time, order.triggered,
                order.reason)


def _venue_order(row, fills) -> VenueOrder:
    order = BrokerOrder(client_order_id=row["client_order_id"], account=row["account"], instrument=row["instrument"],
                        side=row["side"], quantity=row["quantity"], order_type=row["order_type"],
                        limit_price=row["limit_price"], stop_price=row["stop_price"],
                        time_in_force=row["time_in_force"])
    return VenueOrder(number=row["number"], order=order, state=row["state"], filled=row["filled_quantity"],
                      reference_time=row["reference_time"], triggered=row["triggered"], reason=row["reason"],
                      fills=[BrokerFill(broker_fill_id=f["broker_fill_id"], client_order_id=f["client_order_id"],
                                        quantity=f["quantity"], price=f["price"], commission=f["commission"],
                                        time=f["time"]) for f in fills])
