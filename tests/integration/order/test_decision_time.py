"""OrderIntent.decision_time through PostgreSQL and the order process: kept, and honoured by the venue."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.order.v1 import order_pb2
from services.order.brokers.base import BrokerOrder
from services.order.brokers.paper import PaperBroker
from services.order.brokers.venue_store import PostgresVenueStore
from services.order.intents import Intent
from services.order.records import OrderRecord, TraceRef
from services.order.journal import Journal
from services.order.repository import PostgresOrderStore
from services.order.states import OrderState
from tests.integration.order.conftest import OrderPlane, far_limit, order_stub, wait_for_state

S = order_pb2
MICRO = timedelta(microseconds=1)
# Far after the replayed 2013 ticks, so the venue's reference is decision_time + 1 µs, not a quote time.
FUTURE = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
FUTURE_WIRE = Timestamp(seconds=int(FUTURE.replace(microsecond=0).timestamp()), nanos=123456789)


def draft(cid: str, state: OrderState, decision_time: datetime | None) -> OrderRecord:
    intent = Intent(client_order_id=cid, strategy_slug="decided", role="entry", instrument="USD_JPY", side="buy",
                    quantity=Decimal(1000), order_type="limit", limit_price=Decimal("1.000"), time_in_force="GTC",
                    account="paper", decision_time=decision_time)
    now = datetime.now(timezone.utc)
    return OrderRecord(number=0, intent=intent, state=state, created_time=now, updated_time=now)


async def store_orders(pool, *drafts: OrderRecord) -> tuple[int, list[OrderRecord]]:
    """Writes orders through the journal, as the plane does; returns the event seq before them."""
    journal = Journal(PostgresOrderStore(pool))
    await journal.open()
    seq = journal.order_events.last_seq
    try:
        return seq, [await journal.new_order([d], TraceRef()) for d in drafts]
    finally:
        await journal.close()


async def test_the_order_store_keeps_the_decision_time_in_rows_and_in_event_snapshots(pool):
    store = PostgresOrderStore(pool)
    seq, (with_time, without) = await store_orders(pool, draft("store-dt", OrderState.REJECTED, FUTURE),
                                                   draft("store-none", OrderState.REJECTED, None))
    assert (await store.by_client_id("store-dt")).intent.decision_time == FUTURE
    assert (await store.by_number(without.number)).intent.decision_time is None
    listed = await store.list_orders(strategy_slug="decided", instrument="", states=[], limit=10, before_number=None)
    assert {o.intent.client_order_id: o.intent.decision_time for o in listed} == {"store-dt": FUTURE,
                                                                                   "store-none": None}
    snapshots = [event.order async for _, event in store.order_events(seq, seq + 2)]
    assert [o.intent.decision_time for o in snapshots] == [FUTURE, None]
    assert snapshots[0] == with_time


async def test_the_venue_book_in_postgresql_keeps_the_rule_across_a_venue_restart(pool):
    decided = datetime(2013, 1, 1, 22, 1, tzinfo=timezone.utc)
    store = await PostgresVenueStore.open(pool)
    first = PaperBroker(store)
    await first.on_quote("EUR_USD", decided - timedelta(seconds=1), Decimal("1.3200"), Decimal("1.3202"))
    await first.submit(BrokerOrder(client_order_id="venue-dt", account="venue-test", instrument="EUR_USD",
                                   side="buy", quantity=Decimal(1000), order_type="market", time_in_force="IOC",
                                   decision_time=decided))
    restarted = PaperBroker(store)  # the venue's book survives; the decision time lives on as the reference
    await restarted.load()
    assert (await store.get("venue-dt")).reference_time == decided + MICRO
    await restarted.on_quote("EUR_USD", decided, Decimal("1.3201"), Decimal("1.3203"))
    assert restarted.drain_executions() == []
    await restarted.on_quote("EUR_USD", decided + timedelta(seconds=1), Decimal("1.3204"), Decimal("1.3206"))
    (execution,) = restarted.drain_executions()
    assert (execution.state, execution.fill.price) == ("filled", Decimal("1.3206"))


async def venue_reference_time(database_url: str, cid: str) -> datetime | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT reference_time FROM paper_venue.orders WHERE client_order_id = $1", cid)
    finally:
        await conn.close()


async def test_submit_keeps_the_decision_time_over_grpc_and_across_an_order_plane_restart(order_env, database_url):
    plane = OrderPlane(order_env).start()
    try:
        async with grpc.aio.insecure_channel(plane.address) as channel:
            stub = order_stub(channel)
            reply = await stub.Submit(S.SubmitRequest(intent=far_limit("grpc-dt", strategy_slug="decided",
                                                                       decision_time=FUTURE_WIRE)))
            await stub.Submit(S.SubmitRequest(intent=far_limit("grpc-none", strategy_slug="decided")))
            assert reply.order.intent.decision_time.ToDatetime(tzinfo=timezone.utc) == FUTURE
            got = await stub.GetOrder(S.GetOrderRequest(client_order_id="grpc-dt"))
            assert (got.order.intent.decision_time.seconds, got.order.intent.decision_time.nanos) == (
                FUTURE_WIRE.seconds, 123456000)  # stored to the microsecond
        assert await venue_reference_time(database_url, "grpc-dt") == FUTURE + MICRO
        assert (await venue_reference_time(database_url, "grpc-none") or FUTURE) < FUTURE + MICRO
        plane.stop()

        plane.start()  # everything below is read back from PostgreSQL
        async with grpc.aio.insecure_channel(plane.address) as channel:
            stub = order_stub(channel)
            got = await stub.GetOrder(S.GetOrderRequest(client_order_id="grpc-dt"))
            assert got.order.intent.decision_time.ToDatetime(tzinfo=timezone.utc) == FUTURE
            none = await stub.GetOrder(S.GetOrderRequest(client_order_id="grpc-none"))
            assert not none.order.intent.HasField("decision_time")
            stream = stub.WatchOrders(S.WatchOrdersRequest(strategy_slugs=["decided"], resume_after_seq=0))
            replayed = {}
            while len(replayed) < 2:
                event = await asyncio.wait_for(stream.read(), 10)
                if event.order.intent.client_order_id.startswith("grpc-"):
                    intent = event.order.intent
                    replayed[intent.client_order_id] = (intent.decision_time.ToDatetime(tzinfo=timezone.utc)
                                                        if intent.HasField("decision_time") else None)
            stream.cancel()
            assert replayed == {"grpc-dt": FUTURE, "grpc-none": None}
    finally:
        plane.stop()


async def test_a_pending_order_sent_at_recovery_reaches_the_venue_with_its_decision_time(order_env, database_url,
                                                                                         pool):
    await store_orders(pool, draft("pending-dt", OrderState.PENDING_SUBMIT, FUTURE))
    plane = OrderPlane(order_env).start()  # recovery finds it PENDING_SUBMIT, unknown to the venue: sends it
    try:
        async with grpc.aio.insecure_channel(plane.address) as channel:
            got = await wait_for_state(order_stub(channel), "pending-dt", {S.ORDER_STATE_NEW})
        assert got.order.state == S.ORDER_STATE_NEW
        assert got.order.intent.decision_time.ToDatetime(tzinfo=timezone.utc) == FUTURE
        assert await venue_reference_time(database_url, "pending-dt") == FUTURE + MICRO
    finally:
        plane.stop()


async def test_no_pyramiding_is_kept_in_rows_and_snapshots(pool):
    store = PostgresOrderStore(pool)
    entry = draft("store-np", OrderState.REJECTED, None)
    entry = OrderRecord(number=0, intent=Intent(**{**{f: getattr(entry.intent, f) for f in entry.intent.__slots__},
                                                     "no_pyramiding": True}),
                        state=entry.state, created_time=entry.created_time, updated_time=entry.updated_time)
    seq, (stored, plain) = await store_orders(pool, entry, draft("store-np-off", OrderState.REJECTED, None))
    assert (await store.by_client_id("store-np")).intent.no_pyramiding
    assert not (await store.by_number(plain.number)).intent.no_pyramiding
    snapshots = [event.order async for _, event in store.order_events(seq, seq + 2)]
    assert [o.intent.no_pyramiding for o in snapshots] == [True, False] and snapshots[0] == stored
