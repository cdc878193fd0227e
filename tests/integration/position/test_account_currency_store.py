"""The account-currency ledger on PostgreSQL: the rate stored with each fill, pending money
surviving a restart and converted by the first quote, financing charged once per rollover
across restarts, trading days rebuilt."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from services.common.clock import SimulatedClock
from services.common.db import apply_migrations, connect_pool, create_database
from services.position.__main__ import MIGRATIONS
from services.position.engine import PositionEngine
from services.position.financing import FinancingRates
from services.position.ledger import LedgerFill, Mark
from services.position.repository import PostgresLedgerStore

RATES = FinancingRates(long=(("EUR_USD", D("-0.0365")),))


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
async def pool(postgres_admin_url):
    pool = await connect_pool(await create_database(postgres_admin_url))  # a database per test
    await apply_migrations(pool, "positions", MIGRATIONS)
    yield pool
    await pool.close()


async def open_engine(pool) -> PositionEngine:
    return await PositionEngine.open(store=PostgresLedgerStore(pool), clock=SimulatedClock(utc(9, 0)),
                                     starting_cash=D("10000000"), default_account="paper", currency="JPY",
                                     financing=RATES)


def eur_usd(n: int, side: str, price: str, time: datetime, commission: str = "2") -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account="paper", instrument="EUR_USD", strategy="s1", side=side,
                      quantity=D(10000), price=D(price), commission=D(commission), time=time)


async def test_pending_money_survives_a_restart_and_the_rate_is_stored_with_the_fill(pool):
    engine = await open_engine(pool)
    assert await engine.apply_fill(1, eur_usd(1, "buy", "1.0850", utc(9, 10)))
    assert engine.snapshot().account.unconverted == (("USD", D(-2)),)

    engine = await open_engine(pool)  # a restart before any USD_JPY quote
    assert engine.snapshot().account.unconverted == (("USD", D(-2)),)
    await engine.apply_mark(Mark("USD_JPY", D("150.00"), D("150.04"), utc(9, 11)))
    assert engine.snapshot().account.unconverted == ()
    assert engine.snapshot().account.balance == D("9999699.92")  # 2 USD bought at the ask 150.04

    row = await pool.fetchrow("SELECT * FROM positions.bookings WHERE key = 'f1'")
    assert (row["pending"], row["rate_instrument"], row["rate_bid"], row["rate_ask"]) == (
        False, "USD_JPY", D("150.00"), D("150.04"))
    assert (row["rate_time"], row["commission"], row["commission_account"]) == (utc(9, 11), D(2), D("300.08"))

    # a fill with a known rate records it at once: realized (1.0900 - 1.0850) x 10,000 = 50 USD x 150.00
    assert await engine.apply_fill(2, eur_usd(2, "sell", "1.0900", utc(9, 12), commission="0"))
    row = await pool.fetchrow("SELECT * FROM positions.bookings WHERE key = 'f2'")
    assert (row["pnl"], row["pnl_account"], row["rate_bid"]) == (D(50), D(7500), D("150.00"))

    again = await open_engine(pool)
    assert again.snapshot().account == engine.snapshot().account
    assert again.ledger.trading_days("paper") == engine.ledger.trading_days("paper")
    assert again.ledger.trading_days("paper")[-1].realized_pnl == D("7199.92")  # 7,500 - 300.08


async def test_a_rollover_is_charged_once_even_across_a_restart(pool):
    engine = await open_engine(pool)
    await engine.apply_mark(Mark("USD_JPY", D("150.00"), D("150.04"), utc(9, 9)))
    await engine.apply_fill(1, eur_usd(1, "buy", "1.0850", utc(9, 10), commission="0"))
    await engine.apply_mark(Mark("EUR_USD", D("1.0950"), D("1.0952"), utc(9, 21)))
    # 22:00 UTC passes: the long pays 10,000 x 1.0950 x 0.0365 / 365 = 1.095 USD, a loss: x 150.04
    await engine.apply_mark(Mark("EUR_USD", D("1.0950"), D("1.0952"), utc(9, 23)))
    charged = D("-1.095") * D("150.04")
    assert engine.snapshot().account.financing == charged

    again = await open_engine(pool)
    await again.apply_mark(Mark("EUR_USD", D("1.0950"), D("1.0952"), utc(10, 1)))
    assert again.snapshot().account.financing == charged
    rows = await pool.fetch("SELECT charge_id, amount, price FROM positions.financing")
    assert [(r["charge_id"], r["amount"], r["price"]) for r in rows] == [
        ("rollover:paper:EUR_USD:s1:2024-01-09T22:00:00+00:00", D("-1.095"), D("1.0950"))]
