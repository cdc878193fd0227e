"""PostgreSQL adapter of the LedgerStore port (schema `positions` only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import asyncpg

from services.common.tradingday import DAYS_STREAMED, DayFigures, TradingDay
from services.position.currency import Rate
from services.position.ledger import AccountRecord, Booking, LedgerFill, Mark, Position, StrategyRecord
from services.position.store import AdjustmentEntry, EquitySample, PositionChange, StateWrite, StoredLedger

_UPSERT_POSITION = """
INSERT INTO positions.position_state (account, instrument, strategy, quantity, average_price, realized_pnl,
    commission, opened_time, updated_time, trip_realized, trip_commission, realized_pnl_account,
    commission_account, financing)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (account, instrument, strategy) DO UPDATE SET quantity = EXCLUDED.quantity,
    average_price = EXCLUDED.average_price, realized_pnl = EXCLUDED.realized_pnl,
    commission = EXCLUDED.commission, opened_time = EXCLUDED.opened_time, updated_time = EXCLUDED.updated_time,
    trip_realized = EXCLUDED.trip_realized, trip_commission = EXCLUDED.trip_commission,
    realized_pnl_account = EXCLUDED.realized_pnl_account, commission_account = EXCLUDED.commission_account,
    financing = EXCLUDED.financing"""

_UPSERT_STRATEGY = """
INSERT INTO positions.strategy_state (account, slug, wins, losses, consecutive_losses) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (account, slug) DO UPDATE SET wins = EXCLUDED.wins, losses = EXCLUDED.losses,
    consecutive_losses = EXCLUDED.consecutive_losses"""

_UPSERT_ACCOUNT = """
INSERT INTO positions.account_state (account, realized_pnl, commission, peak_equity, max_drawdown, financing)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (account) DO UPDATE SET realized_pnl = EXCLUDED.realized_pnl, commission = EXCLUDED.commission,
    peak_equity = EXCLUDED.peak_equity, max_drawdown = EXCLUDED.max_drawdown, financing = EXCLUDED.financing"""

# A pending booking converted later overwrites its own row: the conversion columns only.
_UPSERT_BOOKING = """
INSERT INTO positions.bookings (key, kind, account, instrument, strategy, booked_time, currency, pnl, commission,
    pending, rate_instrument, rate_bid, rate_ask, rate_time, rate_inverse, pnl_account, commission_account)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
ON CONFLICT (key) DO UPDATE SET pending = EXCLUDED.pending, rate_instrument = EXCLUDED.rate_instrument,
    rate_bid = EXCLUDED.rate_bid, rate_ask = EXCLUDED.rate_ask, rate_time = EXCLUDED.rate_time,
    rate_inverse = EXCLUDED.rate_inverse, pnl_account = EXCLUDED.pnl_account,
    commission_account = EXCLUDED.commission_account
    WHERE positions.bookings.pending"""

_INSERT_FINANCING = """
INSERT INTO positions.financing (charge_id, account, instrument, strategy, charged_time, quantity, price,
    annual_rate, amount, currency, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""

_UPSERT_DAY = """
INSERT INTO positions.trading_days (account, day_start, day_end, trading_date, opening_equity, peak_equity,
    realized_pnl) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (account, day_start) DO UPDATE SET peak_equity = greatest(positions.trading_days.peak_equity,
    EXCLUDED.peak_equity), realized_pnl = EXCLUDED.realized_pnl"""

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
                                  trip_realized=r["trip_realized"], trip_commission=r["trip_commission"],
                                  realized_pnl_account=r["realized_pnl_account"],
                                  commission_account=r["commission_account"], financing=r["financing"])
                         for r in await conn.fetch("SELECT * FROM positions.position_state")]
            strategies = [StrategyRecord(account=r["account"], slug=r["slug"], wins=r["wins"], losses=r["losses"],
                                         consecutive_losses=r["consecutive_losses"])
                          for r in await conn.fetch("SELECT * FROM positions.strategy_state")]
            accounts = [AccountRecord(account=r["account"], realized_pnl=r["realized_pnl"],
                                      commission=r["commission"], peak_equity=r["peak_equity"],
                                      max_drawdown=r["max_drawdown"], financing=r["financing"])
                        for r in await conn.fetch("SELECT * FROM positions.account_state")]
            marks = [Mark(instrument=r["instrument"], bid=r["bid"], ask=r["ask"], time=r["mark_time"])
                     for r in await conn.fetch("SELECT * FROM positions.marks")]
            cursor = await conn.fetchrow("SELECT last_fill_seq, trading_day_start FROM positions.fill_cursor")
            fill_ids = {r["fill_id"] for r in await conn.fetch("SELECT fill_id FROM positions.applied_fills")}
            last_event_seq = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM positions.position_events")
            pending = [_booking(r) for r in await conn.fetch(
                "SELECT * FROM positions.bookings WHERE pending ORDER BY booked_time, key")]
            # The newest days are all the ledger keeps (the window is in market time, not the clock's).
            days = [(r["account"], _day(r)) for r in await conn.fetch(
                "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY account ORDER BY day_start DESC) AS n"
                " FROM positions.trading_days) newest WHERE n <= $1 ORDER BY account, day_start", DAYS_STREAMED)]
            charge_ids = {r["charge_id"] for r in await conn.fetch("SELECT charge_id FROM positions.financing")}
        return StoredLedger(positions=positions, strategies=strategies, accounts=accounts, marks=marks,
                            last_fill_seq=cursor["last_fill_seq"], applied_fill_ids=fill_ids,
                            last_event_seq=last_event_seq, pending=pending, days=days,
                            trading_day_start=cursor["trading_day_start"], financing_ids=charge_ids)

    async def record_fill(self, *, seq: int, fill: LedgerFill, booking: Booking, state: StateWrite,
                          event_seq: int, event: PositionChange, sample: EquitySample) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO positions.applied_fills (seq, fill_id, account, instrument, strategy, side, quantity,"
                " price, commission, fill_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                seq, fill.fill_id, fill.account, fill.instrument, fill.strategy, fill.side, fill.quantity,
                fill.price, fill.commission, fill.time)
            await conn.execute("UPDATE positions.fill_cursor SET last_fill_seq = $1", seq)
            await conn.executemany(_UPSERT_BOOKING, [_booking_row(booking)])
            await self._write_state(conn, state)
            await self._write_event(conn, event_seq, event, [sample])

    async def record_skipped_fill(self, *, seq: int) -> None:
        await self._pool.execute(
            "UPDATE positions.fill_cursor SET last_fill_seq = greatest(last_fill_seq, $1)", seq)

    async def record_adjustment(self, *, adjustment: AdjustmentEntry, booking: Booking, state: StateWrite,
                                event_seq: int, event: PositionChange, sample: EquitySample) -> AdjustmentEntry:
        a = adjustment
        async with self._pool.acquire() as conn, conn.transaction():
            new_id = await conn.fetchval(
                "INSERT INTO positions.adjustments (account, instrument, quantity, price, ledger_quantity,"
                " broker_quantity, broker, actor, reason, adjusted_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                a.account, a.instrument, a.quantity, a.price, a.ledger_quantity, a.broker_quantity, a.broker,
                a.actor, a.reason, a.time)
            await conn.executemany(_UPSERT_BOOKING, [_booking_row(booking)])
            await self._write_state(conn, state)
            await self._write_event(conn, event_seq, event, [sample])
        return AdjustmentEntry(id=new_id, account=a.account, instrument=a.instrument, quantity=a.quantity,
                               price=a.price, ledger_quantity=a.ledger_quantity, broker_quantity=a.broker_quantity,
                               broker=a.broker, actor=a.actor, reason=a.reason, time=a.time)

    async def record_bookkeeping(self, *, state: StateWrite, samples: list[EquitySample]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._write_state(conn, state)
            await conn.executemany(_INSERT_SAMPLE, [_sample_row(s) for s in samples])

    async def _write_state(self, conn, state: StateWrite) -> None:
        if state.financing or state.conversions:
            await conn.executemany(_UPSERT_BOOKING, [_booking_row(b) for _, b in state.financing]
                                   + [_booking_row(b) for b in state.conversions])
        if state.financing:
            await conn.executemany(_INSERT_FINANCING, [
                (c.charge_id, c.account, c.instrument, c.strategy, c.time, c.quantity, c.price, c.annual_rate,
                 c.amount, c.currency, c.source) for c, _ in state.financing])
        if state.positions:
            await conn.executemany(_UPSERT_POSITION, [
                (p.account, p.instrument, p.strategy, p.quantity, p.average_price, p.realized_pnl, p.commission,
                 p.opened_time, p.updated_time, p.trip_realized, p.trip_commission, p.realized_pnl_account,
                 p.commission_account, p.financing) for p in state.positions])
        if state.strategies:
            await conn.executemany(_UPSERT_STRATEGY, [(s.account, s.slug, s.wins, s.losses, s.consecutive_losses)
                                                      for s in state.strategies])
        if state.accounts:
            await conn.executemany(_UPSERT_ACCOUNT, [(a.account, a.realized_pnl, a.commission, a.peak_equity,
                                                      a.max_drawdown, a.financing) for a in state.accounts])
        await self._write_days(conn, state.days, state.trading_day_start)

    async def _write_days(self, conn, days: Iterable[tuple[str, DayFigures]],
                          trading_day_start: datetime | None) -> None:
        rows = [(account, d.day.start, d.day.end, d.day.date, d.opening_equity, d.peak_equity, d.realized_pnl)
                for account, d in days]
        if rows:
            await conn.executemany(_UPSERT_DAY, rows)
        if trading_day_start is not None:
            await conn.execute("UPDATE positions.fill_cursor SET trading_day_start ="
                               " greatest(coalesce(trading_day_start, $1), $1)", trading_day_start)

    async def _write_event(self, conn, event_seq: int, event: PositionChange, samples: list[EquitySample]) -> None:
        e = event.position
        await conn.execute(_INSERT_EVENT, event_seq, e.account, e.instrument, e.strategy, e.quantity,
                           e.average_price, e.realized_pnl, event.unrealized_pnl, e.commission, event.mark_price,
                           e.opened_time, e.updated_time, event.cause, event.traceparent, event.tracestate)
        await conn.executemany(_INSERT_SAMPLE, [_sample_row(s) for s in samples])

    async def record_marks(self, *, marks: list[Mark], accounts: list[AccountRecord],
                           samples: list[EquitySample], days: Iterable[tuple[str, DayFigures]] = (),
                           trading_day_start: datetime | None = None) -> None:
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
            await conn.executemany(_INSERT_SAMPLE, [_sample_row(s) for s in samples])
            await self._write_days(conn, days, trading_day_start)

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


def _sample_row(sample: EquitySample) -> tuple:
    return (sample.account, sample.time, sample.equity, sample.balance, sample.drawdown)


def _booking_row(b: Booking) -> tuple:
    rate = b.rate
    return (b.key, b.kind, b.account, b.instrument, b.strategy, b.time, b.currency, b.pnl, b.commission, b.pending,
            rate.instrument if rate else None, rate.bid if rate else None, rate.ask if rate else None,
            rate.time if rate else None, rate.inverse if rate else None, b.pnl_account, b.commission_account)


def _booking(r) -> Booking:
    rate = None
    if r["rate_instrument"] is not None:
        rate = Rate(instrument=r["rate_instrument"], bid=r["rate_bid"], ask=r["rate_ask"], time=r["rate_time"],
                    inverse=r["rate_inverse"])
    return Booking(kind=r["kind"], key=r["key"], account=r["account"], instrument=r["instrument"],
                   strategy=r["strategy"], time=r["booked_time"], currency=r["currency"], pnl=r["pnl"],
                   commission=r["commission"], pending=r["pending"], rate=rate, pnl_account=r["pnl_account"],
                   commission_account=r["commission_account"])


def _day(r) -> DayFigures:
    return DayFigures(day=TradingDay(start=r["day_start"], end=r["day_end"], date=r["trading_date"]),
                      opening_equity=r["opening_equity"], peak_equity=r["peak_equity"],
                      realized_pnl=r["realized_pnl"])
