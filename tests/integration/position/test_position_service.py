"""The position plane in-process on loopback, with PostgreSQL and the order feed test double."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.auth import TokenTable, bearer_metadata
from services.common.clock import WallClock
from services.common.db import apply_migrations, connect_pool
from services.common.server import GrpcHost, binding
from services.position.__main__ import MIGRATIONS
from services.position.engine import PositionEngine
from services.position.feeds import BrokerPositionsClient, FillFollower, cancel_all
from services.position.repository import PostgresLedgerStore
from services.position.server import AUTH_POLICY, PositionServicer
from tests.integration.position.fake_order_feed import FakeOrderFeed

OPERATOR, STRATEGY = "op-token", "strat-token"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
AUTH = bearer_metadata(STRATEGY)


@pytest.fixture(scope="module")
async def plane(database_url):
    feed = FakeOrderFeed()
    order_address = await feed.start()
    pool = await connect_pool(database_url)
    await apply_migrations(pool, "positions", MIGRATIONS)
    engine = await PositionEngine.open(store=PostgresLedgerStore(pool), clock=WallClock(),
                                       starting_cash=D("10000000"), default_account="paper", currency="JPY")
    follower = FillFollower(engine, order_address)
    broker = BrokerPositionsClient(order_address)
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(f"{OPERATOR}=alice:operator,{STRATEGY}=s1:strategy"),
                    policy=AUTH_POLICY, bindings=[binding(position_pb2, "Position",
                                                          position_pb2_grpc.add_PositionServicer_to_server,
                                                          PositionServicer(engine, broker))])
    await host.start()
    tasks = [asyncio.create_task(follower.run())]
    channel = grpc.aio.insecure_channel(host.address)
    yield feed, position_pb2_grpc.PositionStub(channel), engine, follower, pool
    await channel.close()
    await cancel_all(tasks)
    await host.stop()
    await broker.close()
    await engine.close()
    await feed.stop()
    await pool.close()


async def wait_for_seq(stub, seq: int) -> position_pb2.SnapshotResponse:
    for _ in range(200):
        reply = await stub.Snapshot(position_pb2.SnapshotRequest(include_flat=True), metadata=AUTH)
        if reply.last_fill_seq >= seq:
            return reply
        await asyncio.sleep(0.05)
    raise AssertionError(f"fill seq {seq} was not applied; last is {reply.last_fill_seq}")


async def test_fills_become_positions_and_position_events(plane):
    feed, stub, engine, follower, pool = plane
    await feed.add_fill(side="buy", quantity="10000", price="150.00", commission="20",
                        traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
    await feed.add_fill(side="buy", quantity="5000", price="151.50", commission="10", strategy="s2")
    reply = await wait_for_seq(stub, 2)
    assert [(p.strategy_slug, p.quantity, p.average_price, p.commission) for p in reply.positions] == [
        ("s1", "10000", "150", "20"), ("s2", "5000", "151.5", "10")]
    assert reply.account.balance == "9999970" and reply.account.currency == "JPY"
    assert feed.resume_requests[0] == 0  # a fresh database asks from the first fill

    only_s2 = await stub.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["s2"]), metadata=AUTH)
    assert [p.strategy_slug for p in only_s2.positions] == ["s2"]
    assert [s.slug for s in only_s2.strategies] == ["s2"]

    events = []
    async for event in stub.WatchPositions(position_pb2.WatchPositionsRequest(resume_after_seq=0), metadata=AUTH):
        events.append(event)
        if len(events) == 2:
            break
    assert [(e.seq, e.position.strategy_slug, e.position.quantity) for e in events] == [
        (1, "s1", "10000"), (2, "s2", "5000")]
    # the change joins the trace of the fill that caused it
    assert events[0].trace_context.traceparent.split("-")[1] == TRACE_ID


async def test_a_fill_redelivered_after_a_reconnect_is_counted_once(plane):
    feed, stub, engine, follower, pool = plane
    before = await wait_for_seq(stub, 2)
    feed.redeliver_from = 0  # the next subscription gets fills 1 and 2 again
    await feed.cut_streams()
    await feed.add_fill(side="sell", quantity="4000", price="152.00", commission="8")  # seq 3
    reply = await wait_for_seq(stub, 3)
    assert feed.resume_requests[-1] == 2  # the follower resumed after the last applied seq
    s1 = next(p for p in reply.positions if p.strategy_slug == "s1")
    # 10000 - 4000 once; fills 1 and 2 were not applied a second time
    assert (s1.quantity, s1.realized_pnl, s1.commission) == ("6000", "8000", "28")  # (152 - 150) * 4000
    assert D(reply.account.balance) == D(before.account.balance) + 8000 - 8
    assert await pool.fetchval("SELECT count(*) FROM positions.applied_fills") == 3
    assert await pool.fetchval("SELECT last_fill_seq FROM positions.fill_cursor") == 3


async def test_reconcile_reports_a_difference_and_audits_an_applied_adjustment(plane):
    feed, stub, engine, follower, pool = plane
    await wait_for_seq(stub, 3)
    # ledger net USD_JPY: s1 6000 + s2 5000 = 11000; the broker says 12500
    feed.set_broker_position("USD_JPY", "12500", "150.8")
    report = await stub.Reconcile(position_pb2.ReconcileRequest(), metadata=bearer_metadata(OPERATOR))
    assert not report.in_sync and report.broker == "fake-paper"
    assert [(d.instrument, d.ledger_quantity, d.broker_quantity, d.difference) for d in report.differences] == [
        ("USD_JPY", "11000", "12500", "1500")]
    assert report.adjustments == []

    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await stub.Reconcile(position_pb2.ReconcileRequest(apply_adjustments=True),
                             metadata=bearer_metadata(OPERATOR))
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a reason" in no_reason.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as not_operator:
        await stub.Reconcile(position_pb2.ReconcileRequest(apply_adjustments=True, reason="x"), metadata=AUTH)
    assert not_operator.value.code() == grpc.StatusCode.PERMISSION_DENIED

    applied = await stub.Reconcile(position_pb2.ReconcileRequest(apply_adjustments=True, reason="missed fill"),
                                   metadata=bearer_metadata(OPERATOR))
    [adjustment] = applied.adjustments
    assert (adjustment.instrument, adjustment.quantity, adjustment.actor, adjustment.reason) == (
        "USD_JPY", "1500", "alice", "missed fill")
    row = await pool.fetchrow("SELECT * FROM positions.adjustments WHERE id = $1", adjustment.id)
    assert (row["actor"], row["reason"], row["ledger_quantity"], row["broker_quantity"]) == (
        "alice", "missed fill", D(11000), D(12500))
    booked = await stub.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["reconciliation"]), metadata=AUTH)
    assert [(p.quantity, p.average_price) for p in booked.positions] == [("1500", "150.8")]
    # the fills' history is untouched: s1 still shows what its fills made
    s1 = await stub.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["s1"]), metadata=AUTH)
    assert s1.positions[0].quantity == "6000"
    again = await stub.Reconcile(position_pb2.ReconcileRequest(), metadata=bearer_metadata(OPERATOR))
    assert again.in_sync


async def test_equity_curve_has_a_sample_per_fill(plane):
    feed, stub, engine, follower, pool = plane
    await wait_for_seq(stub, 3)
    curve = await stub.GetEquityCurve(position_pb2.GetEquityCurveRequest(), metadata=AUTH)
    assert len(curve.samples) >= 3
    assert curve.samples[0].balance == "9999980"  # 10,000,000 - 20 commission of the first fill
    two = await stub.GetEquityCurve(position_pb2.GetEquityCurveRequest(limit=2), metadata=AUTH)
    assert len(two.samples) == 2


async def test_an_unknown_account_is_empty_not_an_error(plane):
    feed, stub, engine, follower, pool = plane
    reply = await stub.Snapshot(position_pb2.SnapshotRequest(account="nobody"), metadata=AUTH)
    assert list(reply.positions) == [] and list(reply.strategies) == []
    assert (reply.account.account, reply.account.balance, reply.account.equity) == ("nobody", "10000000", "10000000")


@pytest.mark.parametrize("call, request_, fragment", [
    ("Snapshot", position_pb2.SnapshotRequest(strategy_slugs=[""]), "strategy_slugs contains ''"),
    ("Snapshot", position_pb2.SnapshotRequest(account="a b"), "account 'a b' is not an account name"),
    ("Snapshot", position_pb2.SnapshotRequest(instruments=["USD/JPY"]), "instruments contains 'USD/JPY'"),
    ("GetEquityCurve", position_pb2.GetEquityCurveRequest(limit=10001), "limit 10001 is above the maximum 10000"),
    ("GetEquityCurve", position_pb2.GetEquityCurveRequest(since=Timestamp(seconds=20), until=Timestamp(seconds=10)),
     "must be before until"),
])
async def test_bad_requests_are_invalid_argument(plane, call, request_, fragment):
    stub = plane[1]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stub, call)(request_, metadata=AUTH)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.value.details()


async def test_resume_ahead_of_the_stream_is_failed_precondition(plane):
    stub = plane[1]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stub.WatchPositions(position_pb2.WatchPositionsRequest(resume_after_seq=10_000),
                                           metadata=AUTH):
            pass
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
