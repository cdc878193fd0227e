"""Trailing stops held at the paper venue, through PostgreSQL and the real order process:
the trigger is stored as it moves, so a restart neither loses it nor places a second one."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import grpc

from quantmesh.order.v1 import order_pb2
from services.order.brokers.base import BrokerOrder
from services.order.brokers.paper import PaperBroker
from services.order.brokers.venue_store import PostgresVenueStore
from tests.integration.order.conftest import OrderPlane, intent, order_stub, wait_for_state

S = order_pb2
T0 = datetime(2013, 1, 1, 22, 0, tzinfo=timezone.utc)


async def test_the_venue_book_keeps_the_trailing_trigger_across_a_venue_restart(pool):
    store = await PostgresVenueStore.open(pool)
    first = PaperBroker(store)
    await first.submit(BrokerOrder(client_order_id="trail-pg", account="trail-test", instrument="EUR_USD",
                                   side="sell", quantity=Decimal(1000), order_type="trailing_stop",
                                   trail_distance=Decimal("0.0010"), time_in_force="GTC"))
    for second, bid in enumerate(("1.3200", "1.3250", "1.3245")):  # the trigger rises to 1.3240, then holds
        await first.on_quote("EUR_USD", T0 + timedelta(seconds=second), Decimal(bid), Decimal(bid) + Decimal("2E-4"))
    assert first.drain_executions() == []
    assert (await store.get("trail-pg")).trail_stop == Decimal("1.3240")

    restarted = PaperBroker(store)
    await restarted.load()
    await restarted.on_quote("EUR_USD", T0 + timedelta(seconds=5), Decimal("1.3241"), Decimal("1.3243"))
    assert restarted.drain_executions() == []  # above the stored trigger (a fresh trail would start at 1.3231)
    await restarted.on_quote("EUR_USD", T0 + timedelta(seconds=6), Decimal("1.3240"), Decimal("1.3242"))
    (execution,) = restarted.drain_executions()
    assert (execution.client_order_id, execution.state, execution.fill.price) == ("trail-pg", "filled",
                                                                                  Decimal("1.3240"))
    await store.close()


async def protective(stub, slug: str) -> list[S.OrderRecord]:
    reply = await stub.ListOrders(S.ListOrdersRequest(strategy_slug=slug, states=[S.ORDER_STATE_NEW]))
    return [o for o in reply.orders if o.intent.client_order_id.endswith(":ts")]


async def wait_for_protection(stub, slug: str, timeout: float = 30.0) -> list[S.OrderRecord]:
    deadline = time.monotonic() + timeout
    while not (found := await protective(stub, slug)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return found


async def trail_stop(database_url: str, cid: str) -> Decimal | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT trail_stop FROM paper_venue.orders WHERE client_order_id = $1", cid)
    finally:
        await conn.close()


async def test_an_entry_asking_for_a_trailing_stop_gets_one_resting_that_outlives_a_plane_restart(order_env,
                                                                                                  database_url):
    slug = "trail_e2e"
    plane = OrderPlane(order_env).start()
    try:
        async with grpc.aio.insecure_channel(plane.address) as channel:
            stub = order_stub(channel)
            # Five yen behind the market: the replayed USD/JPY never falls that far, so it rests.
            await stub.Submit(S.SubmitRequest(intent=intent("trail-entry", strategy_slug=slug,
                                                            trailing_stop_distance="5.000")))
            entry = await wait_for_state(stub, "trail-entry", {S.ORDER_STATE_FILLED})
            assert entry.order.state == S.ORDER_STATE_FILLED
            (stop,) = await wait_for_protection(stub, slug)
            fill_price = Decimal(entry.order.average_fill_price)
            assert (stop.intent.order_type, stop.intent.side, stop.intent.trail_distance, stop.intent.quantity,
                    stop.intent.reduce_only) == (S.ORDER_TYPE_TRAILING_STOP, 2, "5.000", "1000", True)
            assert Decimal(stop.intent.stop_price) == fill_price - 5
        before = await trail_stop(database_url, stop.intent.client_order_id)
        assert before is not None and before >= fill_price - 5
        plane.stop()

        plane.start()
        async with grpc.aio.insecure_channel(plane.address) as channel:
            stub = order_stub(channel)
            (after,) = await wait_for_protection(stub, slug)
            assert after.intent.client_order_id == stop.intent.client_order_id  # kept, not placed again
            await asyncio.sleep(1.0)  # quotes keep coming: the trigger only ever rises
            assert await trail_stop(database_url, stop.intent.client_order_id) >= before
            flat = await stub.Flatten(S.FlattenRequest(strategy_slug=slug, reason="end of the trailing stop test"))
            assert len(flat.orders) == 1
            closed = await wait_for_state(stub, flat.orders[0].intent.client_order_id, {S.ORDER_STATE_FILLED})
            assert closed.order.state == S.ORDER_STATE_FILLED
            canceled = await wait_for_state(stub, stop.intent.client_order_id, {S.ORDER_STATE_CANCELED})
            assert canceled.order.state == S.ORDER_STATE_CANCELED  # flat: its protection goes with it
    finally:
        plane.stop()
