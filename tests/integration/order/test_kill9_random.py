"""kill -9 of the order plane at random moments while Submits and fills stream through it.

A client keeps submitting (market orders that fill at the next replayed quote, and resting
limits), retrying each client id until it gets an answer, as strategy workers do. Meanwhile
the order process is killed with SIGKILL at random points and started again on the same
database, eight times. Afterwards nothing is lost and nothing is doubled:
- every client id the client sent has exactly one order, and every answer it got names it;
- every order the venue has is in the order book and the other way round (refusals aside);
- the fills the venue made are the fills recorded, one for one, and no order is left in flight.
"""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import grpc
import pytest

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import OrderPlane, far_limit, intent, order_stub

S = order_pb2
KILLS = 8


@pytest.fixture(scope="module")
def plane(order_env):
    plane = OrderPlane({**order_env, "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000",
                        "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1e12",
                        "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1e12", "QUANTMESH_LOG_LEVEL": "WARNING",
                        "QUANTMESH_BROKER_RATE": "100000",
                        # The paper venue's "no such order" is final (it lives in this process): an
                        # order stored SUBMITTED but never sent before a kill is settled soon.
                        "QUANTMESH_LOST_IN_TRANSIT_SECONDS": "2"})
    yield plane
    plane.stop()


async def submit_until_answered(address: str, request: S.SubmitRequest, stop_at: float) -> str:
    """Retries one client id through kills and restarts, like a strategy worker's gateway; the order id
    of the answer (a refusal, such as lost in transit after a kill, names it in its sentence)."""
    while time.monotonic() < stop_at:
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                return (await order_stub(channel).Submit(request, timeout=5)).order.order_id
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return exc.details().split()[1]  # "order ord-000000000042 (cid) was rejected by ..."
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.CANCELLED), exc
            await asyncio.sleep(0.05)
    raise AssertionError(f"{request.intent.client_order_id} got no answer in time")


async def test_random_kill_9_points_lose_nothing_and_double_nothing(plane, database_url):
    rng = random.Random(4043)
    answers: dict[str, str] = {}
    sent: list[str] = []
    stop_at = time.monotonic() + 240
    plane.start()
    kills_done = 0

    async def client(n_client: int) -> None:
        n = 0
        while kills_done < KILLS:
            cid = f"k9-{n_client}-{n}"
            n += 1
            sent.append(cid)
            make = intent if rng.random() < 0.6 else far_limit
            answers[cid] = await submit_until_answered(plane.address, S.SubmitRequest(
                intent=make(cid, strategy_slug="k9")), stop_at)

    clients = [asyncio.create_task(client(c)) for c in range(4)]
    try:
        while kills_done < KILLS:
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            plane.process.kill()  # SIGKILL: no drain, no goodbye
            kills_done += 1
            await asyncio.to_thread(plane.start)
        await asyncio.gather(*clients)
    finally:
        for task in clients:
            task.cancel()
    # Quiet now: let recovery and the replayed quotes settle every order, then compare the books.
    await settled(database_url)
    plane.stop()

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT client_order_id, number, state FROM orders.orders WHERE strategy_slug = 'k9'")
        ours = {r["client_order_id"]: r for r in rows}
        assert set(sent) == set(ours)  # none lost: every id sent was stored (once: the key is unique)
        assert all(answers[c] == f"ord-{ours[c]['number']:012d}" for c in sent)
        venue = {r[0] for r in await conn.fetch("SELECT client_order_id FROM paper_venue.orders "
                                                "WHERE client_order_id LIKE 'k9-%'")}
        assert venue == {c for c, r in ours.items() if r["state"] != "REJECTED"}
        assert not [c for c, r in ours.items() if r["state"] in ("PENDING_SUBMIT", "SUBMITTED")]
        venue_fills = {tuple(r) for r in await conn.fetch(
            "SELECT broker_fill_id, quantity, price FROM paper_venue.fills WHERE client_order_id LIKE 'k9-%'")}
        our_fills = {tuple(r) for r in await conn.fetch(
            "SELECT broker_fill_id, quantity, price FROM orders.fills WHERE client_order_id LIKE 'k9-%'")}
        assert our_fills == venue_fills and len(our_fills) > 10
        seqs = [r[0] for r in await conn.fetch("SELECT seq FROM orders.order_events ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))  # the event log survived eight kills without a gap
    finally:
        await conn.close()
    assert len(sent) > 40  # the kills landed among many Submits


async def settled(database_url: str, timeout: float = 60.0) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = await conn.fetchval(
                "SELECT count(*) FROM orders.orders o WHERE o.strategy_slug = 'k9' AND (o.state IN "
                "('PENDING_SUBMIT', 'SUBMITTED') OR (o.order_type = 'market' AND o.state = 'NEW'))")
            venue_ahead = await conn.fetchval(
                "SELECT count(*) FROM paper_venue.fills f LEFT JOIN orders.fills o USING (broker_fill_id)"
                " WHERE o.broker_fill_id IS NULL AND f.client_order_id LIKE 'k9-%'")
            if waiting == 0 and venue_ahead == 0:
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
