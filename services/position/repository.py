"""PostgreSQL adapter of the LedgerStore port (schema `positions` only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from services.position.ledger import AccountRecord, LedgerFill, Mark, Position, StrategyRecord
from services.position.store import AdjustmentEntry, EquitySample, PositionChange, StoredLedger

_UPSERT_POSITION = """
INSERT INTO positions.position_state (account, instrument, strategy, quantity, average_price, realized_pnl,
    commission, opened_time, updated_time, trip_realized, trip_commission)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (account, instrument, strategy) DO UPDATE SET quantity = EXCLUDED.quantity,
    average_price = EXCLUDED.average_price, realized_pnl = EXCLUDED.realized_pnl,
    commission = EXCLUDED.commission, opened_time = EXCLUDED.opened_time, updated_time = EXCLUDED.updated_time,
    trip_realized = EXCLUDED.trip_realized, trip_commission = EXCLUDED.trip_commission"""

_UPSERT_STRATEGY = """
INSERT INTO positions.strategy_state (account, slug, wins, losses, consecutive_losses) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account, slug) DO UPDATE SET wins = EXCLUDED.wins, losses = EXCLUDED.losses,
    consecutive_losses = EXCLUDED.consecutive_losses"""

_UPSERT_ACCOUNT = """
INSERT INTO positions.account_state (account, realized_pnl, commission, peak_equity, max_drawdown)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account) DO UPDATE SET realized_pnl = EXCLUDED.realized_pnl, commission = EXCLUDED.commission,
    peak_equity = EXCLUDED.peak_equity, max_drawdown = EXCLUDED.max_drawdown"""

_INSERT_EVENT = """
INSERT INTO positions.position_events (seq, account, instrument, strategy, quantity, average_price, realized_pnl,
    unrealized_pnl, commission, mark_price, opened_time, updated_time, cause, traceparent, tracestate)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"""

_INSERT_SAMPLE = """
INSERT INTO positions.equity_samples (account, sample_time, equity, balance, drawdown) VALUES ($1, $2, $3, $4, $5)"""


class PostgresLedgerStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> StoredLedger:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            positions = [Position(account=r["account"], instrument=r["instrument"], strategy=r["strategy"],
                                  quantity=r["quantity"], average_price=r["average_price"],
                                  realized_pnl=r["realized_pnl"], commission=r["commission"],
                                  opened_time=r["opened_time"], updated_time=r["updated_time"],
                                  trip_realized=r["trip_realized"], trip_commission=r["trip_commission"])
                         for r in await conn.fetch("SELECT * FROM positions.position_state")]
            strategies = [StrategyRecord(account=r["account"], slug=r["slug"], wins=r["wins"], losses=r["losses"],
                                         consecutive_losses=r["consecutive_losses"])
                          for r in await conn.fetch("SELECT * FROM positions.strategy_state")]
            accounts = [AccountRecord(account=r["account"], realized_pnl=r["realized_pnl"],
                                      commission=r["commission"], peak_equity=r["peak_equity"],
                                      max_drawdown=r["max_drawdown"])
                        for r in await conn.fetch("SELECT * FROM positions.account_state")]
            marks = [Mark(instrument=r["instrument"], bid=r["bid"], ask=r["ask"], time=r["mark_time"])
                     for r in await conn.fetch("SELECT * FROM positions.marks")]
            last_fill_seq = await conn.fetchval("SELECT last_fill_seq FROM positions.fill_cursor")
            fill_ids = {r["fill_id"] for r in await conn.fetch("SELECT fill_id FROM positions.applied_fills")}
            last_event_seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM positions.position_events")
        return StoredLedger(positions=positions, strategies=strategies, accounts=accounts, marks=marks,
                            last_fill_seq=last_fill_seq, applied_fill_ids=fill_ids, last_event_seq=last_event_seq)

    async def record_fill(self, *, seq: int, fill: LedgerFill, position: Position, strategy: StrategyRecord,
                          account: AccountRecord, event_seq: int, event: PositionChange,
                          sample: EquitySample) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO positions.applied_fills (seq, fill_id, account, instrument, strategy, side, quantity,"
                " price, commission, fill_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                seq, fill.fill_id, fill.account, fill.instrument, fill.strategy, fill.side, fill.quantity,
                fill.price, fill.commission, fill.time)
            await conn.execute("UPDATE positions.fill_cursor SET last_fill_seq = $1", seq)
            await self._write_state(conn, position, strategy, account, event_seq, event, sample)

    async def record_skipped_fill(self, *, seq: int) -> None:
        await self._pool.execute(
            "UPDATE positions.fill_cursor SET last_fill_seq = greatest(last_fill_seq, $1)", seq)

    async def record_adjustment(self, *, adjustment: AdjustmentEntry, position: Position,
                                strategy: StrategyRecord, account: AccountRecord, event_seq: int,
                                event: PositionChange, sample: EquitySample) -> AdjustmentEntry:
        a = adjustment
        async with self._pool.acquire() as conn, conn.transaction():
            new_id = await conn.fetchval(
                "INSERT INTO positions.adjustments (account, instrument, quantity, price, ledger_quantity,"
                " broker_quantity, broker, actor, reason, adjusted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                a.account, a.instrument, a.quantity, a.price, a.ledger_quantity, a.broker_quantity, a.broker,
                a.actor, a.reason, a.time)
            await self._write_state(conn, position, strategy, account, event_seq, event, sample)
        return AdjustmentEntry(id=new_id, account=a.account, instrument=a.instrument, quantity=a.quantity,
                               price=a.price, ledger_quantity=a.ledger_quantity, broker_quantity=a.broker_quantity,
                               broker=a.broker, actor=a.actor, reason=a.reason, time=a.time)

    async def _write_state(self, conn, position: Position, strategy: StrategyRecord, account: AccountRecord,
                           event_seq: int, event: PositionChange, sample: EquitySample) -> None:
        p = position
        await conn.execute(_UPSERT_POSITION, p.account, p.instrument, p.strategy, p.quantity, p.average_price,
                           p.realized_pnl, p.commission, p.opened_time, p.updated_time, p.trip_realized,
                           p.trip_commission)
        await conn.execute(_UPSERT_STRATEGY, strategy.account, strategy.slug, strategy.wins, strategy.losses,
                           strategy.consecutive_losses)
        await conn.execute(_UPSERT_ACCOUNT, account.account, account.realized_pnl, account.commission,
                           account.peak_equity, account.max_drawdown)
        e = event.position
        await conn.execute(_INSERT_EVENT, event_seq, e.account, e.instrument, e.strategy, e.quantity,
                           e.average_price, e.realized_pnl, event.unrealized_pnl, e.commission, event.mark_price,
                           e.opened_time, e.updated_time, event.cause, event.traceparent, event.tracestate)
        await conn.execute(_INSERT_SAMPLE, sample.account, sample.time, sample.equity, sample.balance,
                           sample.drawdown)

    async def record_marks(self, *, marks: list[Mark], accounts: list[AccountRecord],
                           samples: list[EquitySample]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO positions.marks (instrument, bid, ask, mark_time) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (instrument) DO UPDATE SET bid = EXCLUDED.bid, ask = EXCLUDED.ask,"
                " mark_time = EXCLUDED.mark_time",
                [(m.instrument, m.bid, m.ask, m.time) for m in marks])
            # Only the mark-driven figures: realized and commission are written by fills alone.
            await conn.executemany(
                "UPDATE positions.account_state SET peak_equity = greatest(peak_equity, $2),"
                " max_drawdown = greatest(max_drawdown, $3) WHERE account = $1",
                [(a.account, a.peak_equity, a.max_drawdown) for a in accounts])
            await conn.executemany(_INSERT_SAMPLE, [(s.account, s.time, s.equity, s.balance, s.drawdown)
                                                    for s in samples])

    async def equity_curve(self, *, account: str, since: datetime | None, until: datetime | None,
                           limit: int) -> list[EquitySample]:
        rows = await self._pool.fetch(
            "SELECT account, sample_time, equity, balance, drawdown FROM positions.equity_samples"
            " WHERE account = $1 AND ($2::timestamptz IS NULL OR sample_time >= $2)"
            " AND ($3::timestamptz IS NULL OR sample_time < $3) ORDER BY sample_time, id LIMIT $4",
            account, since, until, limit)
        return [EquitySample(account=r["account"], time=r["sample_time"], equity=r["equity"],
                             balance=r["balance"], drawdown=r["drawdown"]) for r in rows]

    async def adjustments(self, *, account: str) -> list[AdjustmentEntry]:
        rows = await self._pool.fetch("SELECT * FROM positions.adjustments WHERE account = $1 ORDER BY id", account)
        return [AdjustmentEntry(id=r["id"], account=r["account"], instrument=r["instrument"], quantity=r["quantity"],
                                price=r["price"], ledger_quantity=r["ledger_quantity"],
                                broker_quantity=r["broker_quantity"], broker=r["broker"], actor=r["actor"],
                                reason=r["reason"], time=r["adjusted_at"]) for r in rows]

    async def oldest_seq(self) -> int | None:
        return await self._pool.fetchval("SELECT min(seq) FROM positions.position_events")

    async def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, PositionChange]]:
        rows = await self._pool.fetch(
            "SELECT * FROM positions.position_events WHERE seq > $1 AND seq <= $2 ORDER BY seq", after_seq, up_to_seq)
        for r in rows:
            position = Position(account=r["account"], instrument=r["instrument"], strategy=r["strategy"],
                                quantity=r["quantity"], average_price=r["average_price"],
                                realized_pnl=r["realized_pnl"], commission=r["commission"],
                                opened_time=r["opened_time"], updated_time=r["updated_time"])
            yield r["seq"], PositionChange(position=position, unrealized_pnl=r["unrealized_pnl"],
                                           mark_price=r["mark_price"], cause=r["cause"],
                                           traceparent=r["traceparent"], tracestate=r["tracestate"])
