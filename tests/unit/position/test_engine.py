"""The engine over the in-memory store: exactly-once fills, restore, reconciliation, samples."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from services.common.clock import SimulatedClock
from services.common.errors import FailedPrecondition
from services.position.engine import BrokerPosition, PositionEngine
from services.position.ledger import LedgerFill, Mark
from services.position.memory_store import InMemoryStore

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def fill(n: int, side: str, qty: str, price: str, strategy: str = "s1") -> LedgerFill:
    return LedgerFill(fill_id=f"f{n}", account="paper", instrument="USD_JPY", strategy=strategy, side=side,
                      quantity=D(qty), price=D(price), commission=D(1), time=T0 + timedelta(seconds=n))


async def open_engine(store: InMemoryStore) -> PositionEngine:
    return await PositionEngine.open(store=store, clock=SimulatedClock(T0), starting_cash=D(1_000_000),
                                     default_account="paper", currency="JPY")


async def test_a_redelivered_fill_counts_once_and_restore_gives_the_same_ledger():
    store = InMemoryStore()
    engine = await open_engine(store)
    assert await engine.apply_fill(1, fill(1, "buy", "100", "150"))
    assert not await engine.apply_fill(1, fill(1, "buy", "100", "150"))  # same seq again
    assert not await engine.apply_fill(2, fill(1, "buy", "100", "150"))  # same fill id, new seq
    assert await engine.apply_fill(3, fill(3, "buy", "100", "152"))
    view = engine.snapshot()
    assert [(v.position.quantity, v.position.average_price) for v in view.positions] == [(D(200), D(151))]
    assert view.last_fill_seq == 3
    assert engine.changes.last_seq == 2  # two changes, not three

    again = await open_engine(store)
    restored = again.snapshot()
    assert restored.positions == view.positions
    assert restored.account == view.account
    assert again.last_fill_seq == 3 and again.changes.last_seq == 2
    assert not await again.apply_fill(3, fill(3, "buy", "100", "152"))


async def test_marks_are_sampled_at_most_once_per_minute_of_market_time():
    store = InMemoryStore()
    engine = await open_engine(store)
    await engine.apply_fill(1, fill(1, "buy", "100", "150"))  # a sample at T0+1s
    for second in range(2, 200, 10):
        await engine.apply_mark(Mark("USD_JPY", D("150.1"), D("150.2"), T0 + timedelta(seconds=second)))
    times = [s.time for s in store.samples]
    # the fill at 1s, then marks at 62s, 122s, 182s
    assert times == [T0 + timedelta(seconds=s) for s in (1, 62, 122, 182)]
    assert (await engine.equity_curve(limit=2))[1].equity == D(1_000_000) - 1 + D("0.1") * 100


async def test_reconcile_reports_and_books_an_audited_adjustment():
    store = InMemoryStore()
    engine = await open_engine(store)
    await engine.apply_fill(1, fill(1, "buy", "100", "150", strategy="a"))
    await engine.apply_fill(2, fill(2, "sell", "30", "150", strategy="b"))
    broker = [BrokerPosition("USD_JPY", D(90), D("150.5")), BrokerPosition("EUR_JPY", D(-5), None)]
    result = await engine.reconcile(account="", broker="paper", broker_positions=broker, apply_adjustments=False,
                                    reason="", actor="alice")
    assert not result.in_sync
    assert [(d.instrument, d.ledger_quantity, d.broker_quantity, d.difference) for d in result.differences] == [
        ("EUR_JPY", D(0), D(-5), D(-5)), ("USD_JPY", D(70), D(90), D(20))]
    # EUR_JPY has no broker price and no mark yet: refused, and nothing at all is booked
    with pytest.raises(FailedPrecondition, match="EUR_JPY"):
        await engine.reconcile(account="", broker="paper", broker_positions=broker, apply_adjustments=True,
                               reason="drill", actor="alice")
    assert store.stored_adjustments == []
    await engine.apply_mark(Mark("EUR_JPY", D("160"), D("160.2"), T0))
    result = await engine.reconcile(account="", broker="paper", broker_positions=broker, apply_adjustments=True,
                                    reason="broker restart", actor="alice")
    assert [(a.instrument, a.quantity, a.price, a.actor, a.reason) for a in result.adjustments] == [
        ("EUR_JPY", D(-5), D("160.1"), "alice", "broker restart"),
        ("USD_JPY", D(20), D("150.5"), "alice", "broker restart")]
    recon = engine.snapshot(strategies=["reconciliation"]).positions
    assert [(v.position.instrument, v.position.quantity) for v in recon] == [("EUR_JPY", D(-5)), ("USD_JPY", D(20))]
    after = await engine.reconcile(account="", broker="paper", broker_positions=broker, apply_adjustments=False,
                                   reason="", actor="alice")
    assert after.in_sync


async def test_a_snapshot_never_shows_a_fill_whose_write_is_still_in_flight():
    import asyncio

    class SlowStore(InMemoryStore):
        def __init__(self):
            super().__init__()
            self.gate = asyncio.Event()
            self.writing = asyncio.Event()

        async def record_fill(self, **kwargs):
            self.writing.set()
            await self.gate.wait()  # the database commit takes a while
            return await super().record_fill(**kwargs)

    store = SlowStore()
    engine = await open_engine(store)
    store.gate.set()
    await engine.apply_fill(1, fill(1, "sell", "100", "150"))
    store.gate.clear()
    writer = asyncio.create_task(engine.apply_fill(2, fill(2, "buy", "100", "149")))
    await store.writing.wait()
    reader = asyncio.create_task(engine.consistent_snapshot())
    await asyncio.sleep(0.01)
    assert not reader.done()  # it waits for the write instead of reading half of it
    store.gate.set()
    await writer
    view = await reader
    # positions and last_fill_seq belong together: fill 2 closed the short and is counted
    assert view.last_fill_seq == 2 and [v.position.quantity for v in view.positions] == []
