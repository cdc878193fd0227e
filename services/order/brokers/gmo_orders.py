"""The GMO adapter's durable record of what it sent: client id -> what was POSTed -> GMO's orderId.

GMO Coin's /v1/order has no client order id and a second POST is a second order. The row is
written before the POST, so after a crash or a restart:
- no row: this client id was never sent (lookup answers None);
- a row without orderId: the POST's outcome is unknown; the venue is searched for it;
- a row with orderId: the order is asked for by GMO's own id.
`PostgresSentOrders` (schema `gmo_venue`) for the process, `MemorySentOrders` for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import asyncpg

from services.common.db import apply_migrations

SCHEMA = "gmo_venue"
MIGRATIONS = Path(__file__).with_name("gmo_migrations")
_COLUMNS = ("client_order_id, symbol, side, execution_type, size, price, endpoint, position_id, sent_at, order_id, "
            "finished")


@dataclass(frozen=True, kw_only=True, slots=True)
class SentOrder:
    client_order_id: str
    symbol: str
    side: str                      # BUY | SELL, GMO's words
    execution_type: str            # MARKET | LIMIT
    size: Decimal
    price: Decimal | None
    endpoint: str                  # /v1/order, /v1/closeOrder or /v1/closeBulkOrder
    position_id: int | None
    sent_at: datetime
    order_id: str | None = None
    finished: bool = False

    @property
    def settle_type(self) -> str:
        return "OPEN" if self.endpoint == "/v1/order" else "CLOSE"


class SentOrders(Protocol):
    async def get(self, client_order_id: str) -> SentOrder | None: ...

    async def record_sending(self, order: SentOrder) -> SentOrder:
        """Stores the row unless one exists for the client id; returns the stored row."""

    async def record_order_id(self, client_order_id: str, order_id: str) -> None: ...

    async def forget(self, client_order_id: str) -> None:
        """GMO refused the POST: nothing exists there, as if never sent."""

    async def finish(self, client_order_id: str) -> None: ...

    async def unfinished(self) -> list[SentOrder]: ...

    async def claimed(self, symbol: str) -> set[str]:
        """GMO order ids already linked to a client id for this symbol."""


class MemorySentOrders:
    def __init__(self) -> None:
        self.rows: dict[str, SentOrder] = {}

    async def get(self, client_order_id: str) -> SentOrder | None:
        return self.rows.get(client_order_id)

    async def record_sending(self, order: SentOrder) -> SentOrder:
        return self.rows.setdefault(order.client_order_id, order)

    async def record_order_id(self, client_order_id: str, order_id: str) -> None:
        self.rows[client_order_id] = replace(self.rows[client_order_id], order_id=order_id)

    async def forget(self, client_order_id: str) -> None:
        self.rows.pop(client_order_id, None)

    async def finish(self, client_order_id: str) -> None:
        self.rows[client_order_id] = replace(self.rows[client_order_id], finished=True)

    async def unfinished(self) -> list[SentOrder]:
        return sorted((r for r in self.rows.values() if not r.finished), key=lambda r: r.sent_at)

    async def claimed(self, symbol: str) -> set[str]:
        return {r.order_id for r in self.rows.values() if r.symbol == symbol and r.order_id}


class PostgresSentOrders:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, pool: asyncpg.Pool) -> "PostgresSentOrders":
        await apply_migrations(pool, SCHEMA, MIGRATIONS)
        return cls(pool)

    async def get(self, client_order_id: str) -> SentOrder | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM gmo_venue.sent_orders WHERE client_order_id = $1",
                                      client_order_id)
        return None if row is None else SentOrder(**dict(row))

    async def record_sending(self, order: SentOrder) -> SentOrder:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO gmo_venue.sent_orders (client_order_id, symbol, side, execution_type, size, price,"
                " endpoint, position_id, sent_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
                " ON CONFLICT (client_order_id) DO NOTHING",
                order.client_order_id, order.symbol, order.side, order.execution_type, order.size, order.price,
                order.endpoint, order.position_id, order.sent_at)
        stored = await self.get(order.client_order_id)
        assert stored is not None  # inserted now or before
        return stored

    async def record_order_id(self, client_order_id: str, order_id: str) -> None:
        await self._execute("UPDATE gmo_venue.sent_orders SET order_id = $2 WHERE client_order_id = $1",
                            client_order_id, order_id)

    async def forget(self, client_order_id: str) -> None:
        await self._execute("DELETE FROM gmo_venue.sent_orders WHERE client_order_id = $1", client_order_id)

    async def finish(self, client_order_id: str) -> None:
        await self._execute("UPDATE gmo_venue.sent_orders SET finished = true WHERE client_order_id = $1",
                            client_order_id)

    async def unfinished(self) -> list[SentOrder]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT {_COLUMNS} FROM gmo_venue.sent_orders WHERE NOT finished"
                                    " ORDER BY sent_at")
        return [SentOrder(**dict(r)) for r in rows]

    async def claimed(self, symbol: str) -> set[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch("SELECT order_id FROM gmo_venue.sent_orders WHERE symbol = $1"
                                    " AND order_id IS NOT NULL", symbol)
        return {r["order_id"] for r in rows}

    async def _execute(self, sql: str, *args) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(sql, *args)
