"""The deadline storm: thousands of Submits that give up after 1-20 ms must not wedge the plane.

Before the journal, a client deadline that landed between a row's insert and the
in-memory seq's advance left the next write colliding on `order_events_pkey`, and from
then on every Submit and every fill failed while health said SERVING. Here 5,250
Submits (250 rounds of 20 with random 1-20 ms deadlines and one with a normal deadline),
market and resting limit orders mixed, run while other tasks open and cancel WatchOrders
and WatchFills streams at random, and open SubmitStream calls, write a few intents into each
and cancel the call 1-20 ms later. Then, once the plane is quiet, the books must agree:
- every normal Submit succeeded, and the plane still says SERVING;
- a client id has at most one order and at most one venue order;
- no order is left PENDING_SUBMIT or SUBMITTED (the paper venue always answers);
- the fills the venue made are the fills recorded, one for one;
- the event log has no gap and no duplicate, and a replay of WatchOrders from 0 equals it.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import OrderPlane, far_limit, intent, order_stub, wait_for_state
from tests.support.streams import until_quiet

S = order_pb2
ROUNDS, BURST = 250, 20
#: SubmitStream calls per churner at most: the storm's size must not grow with the plane's speed (a
#: faster plane reads more intents per call), or its market orders' fills, which wait for replayed
#: quotes, outlast the wait for them below.
MAX_STREAM_CALLS = 600


@pytest.fixture(scope="module")
def plane(order_env):
    plane = OrderPlane({**order_env, "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000",
                        "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1e12",
                        "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1e12", "QUANTMESH_BROKER_RATE": "100000",
                        "QUANTMESH_LOG_LEVEL": "WARNING"}).start()
    yield plane
    plane.stop()


def storm_intent(rng: random.Random, cid: str) -> order_pb2.OrderIntent:
    return intent(cid, strategy_slug="storm") if rng.random() < 0.5 else far_limit(cid, strategy_slug="storm")


async def hasty(stub, rng: random.Random, cid: str, gave_up: set[str]) -> None:
    try:
        await stub.Submit(S.SubmitRequest(intent=storm_intent(rng, cid)), timeout=rng.uniform(0.001, 0.020))
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED), exc
        gave_up.add(cid)


async def stream_churn(stub, rng: random.Random, stop: asyncio.Event) -> int:
    """Opens WatchOrders/WatchFills with a random resume point and cancels them mid-flight."""
    opened = 0
    while not stop.is_set():
        request = (S.WatchOrdersRequest(resume_after_seq=rng.randint(0, 50)) if rng.random() < 0.5
                   else S.WatchFillsRequest(resume_after_seq=rng.randint(0, 5)))
        call = stub.WatchOrders(request) if isinstance(request, S.WatchOrdersRequest) else stub.WatchFills(request)
        opened += 1
        try:
            await asyncio.wait_for(call.read(), rng.uniform(0.001, 0.03))
        except (asyncio.TimeoutError, grpc.aio.AioRpcError):
            pass
        call.cancel()
    return opened


async def submit_stream_churn(stub, rng: random.Random, stop: asyncio.Event, tag: str) -> tuple[int, set[str]]:
    """Opens SubmitStream calls, writes 1-5 storm intents into each, and cancels the call after 1-20 ms
    whatever it has answered: the intents the plane read must still go all the way, once."""
    opened, sent = 0, set()
    while not stop.is_set() and opened < MAX_STREAM_CALLS:
        cids = [f"storm-{tag}-{opened}-{n}" for n in range(rng.randint(1, 5))]
        sent.update(cids)
        call = stub.SubmitStream(S.SubmitStreamRequest(intent=storm_intent(rng, cid)) for cid in cids)
        opened += 1
        try:
            await asyncio.wait_for(call.read(), rng.uniform(0.001, 0.020))
        except (asyncio.TimeoutError, grpc.aio.AioRpcError):
            pass
        call.cancel()
    return opened, sent


async def test_a_storm_of_client_deadlines_leaves_memory_database_and_venue_in_agreement(plane, database_url):
    rng = random.Random(20261130)
    normal: list[S.SubmitResponse] = []
    gave_up: set[str] = set()
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = order_stub(channel)
        stop = asyncio.Event()
        churners = [asyncio.create_task(stream_churn(stub, random.Random(n), stop)) for n in range(3)]
        submitters = [asyncio.create_task(submit_stream_churn(stub, random.Random(10 + n), stop, f"s{n}"))
                      for n in range(2)]
        for round_ in range(ROUNDS):
            await asyncio.gather(*(hasty(stub, rng, f"storm-{round_}-{n}", gave_up) for n in range(BURST)))
            reply = await stub.Submit(S.SubmitRequest(intent=far_limit(f"calm-{round_}", strategy_slug="calm")),
                                      timeout=10)
            normal.append(reply)
        stop.set()
        opened = await asyncio.gather(*churners)
        assert sum(opened) > 50  # the streams really were opened and cut while the storm ran
        streamed = await asyncio.gather(*submitters)
        assert sum(n for n, _ in streamed) > 20
        stream_sent = set().union(*(cids for _, cids in streamed))

        assert [r.order.state for r in normal] == [S.ORDER_STATE_NEW] * ROUNDS
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        # Market orders of the storm fill at the next replayed quote: wait for the last one to be quiet.
        await wait_for_state(stub, f"calm-{ROUNDS - 1}", {S.ORDER_STATE_NEW})
        await settle_until_no_order_is_in_flight(database_url)
        replayed = await read_all_events(stub)

    conn = await asyncpg.connect(database_url)
    try:
        in_flight = await conn.fetchval("SELECT count(*) FROM orders.orders WHERE state IN ('PENDING_SUBMIT', "
                                        "'SUBMITTED') AND strategy_slug IN ('storm', 'calm')")
        assert in_flight == 0
        doubled_venue = await conn.fetchval("SELECT count(*) FROM (SELECT client_order_id FROM paper_venue.orders "
                                            "GROUP BY client_order_id HAVING count(*) > 1) d")
        assert doubled_venue == 0
        ours = {r[0] for r in await conn.fetch("SELECT client_order_id FROM orders.orders "
                                               "WHERE state NOT IN ('REJECTED')")}
        venue = {r[0] for r in await conn.fetch("SELECT client_order_id FROM paper_venue.orders")}
        assert venue == ours  # every accepted order reached the venue once; nothing the venue has is unknown here
        venue_fills = {(r[0], r[1]) for r in await conn.fetch(
            "SELECT broker_fill_id, quantity FROM paper_venue.fills")}
        our_fills = {(r[0], r[1]) for r in await conn.fetch("SELECT broker_fill_id, quantity FROM orders.fills")}
        assert venue_fills == our_fills and venue_fills
        seqs = [r[0] for r in await conn.fetch("SELECT seq FROM orders.order_events ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        assert replayed == seqs
        # The point of the storm: callers gave up after their order reached the store, and those
        # orders still went all the way (none is in flight above, each is at the venue once).
        stored_after_giving_up = await conn.fetchval(
            "SELECT count(*) FROM orders.orders WHERE client_order_id = ANY($1::text[])", sorted(gave_up))
        assert len(gave_up) > ROUNDS * BURST / 2 and stored_after_giving_up > 20
        # Intents written into SubmitStream calls cancelled mid-flight: the ones read are stored (and
        # above, each accepted one is at the venue once, nothing in flight).
        assert await conn.fetchval("SELECT count(*) FROM orders.orders WHERE client_order_id = ANY($1::text[])",
                                   sorted(stream_sent)) > 20
    finally:
        await conn.close()


async def settle_until_no_order_is_in_flight(database_url: str, timeout: float = 60.0) -> None:
    conn = await asyncpg.connect(database_url)
    waiting = None
    try:
        for _ in range(int(timeout / 0.1)):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM orders.orders o WHERE o.strategy_slug = 'storm' AND (o.state IN "
                "('PENDING_SUBMIT', 'SUBMITTED') OR (o.order_type = 'market' AND o.state = 'NEW'))")
            if waiting == 0:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError(f"{waiting} storm orders are still in flight or unfilled market orders after {timeout:g} s")


async def read_all_events(stub) -> list[int]:
    """WatchOrders from the first event until the stream is idle: the seqs it delivered."""
    return [event.seq for event in await until_quiet(stub.WatchOrders(S.WatchOrdersRequest(resume_after_seq=0)))]
