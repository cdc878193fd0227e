"""Order.SubmitStream against a real order process on PostgreSQL: one call, many intents,
each answered once by its client id; a caller that leaves stops the answers, never the work."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import OrderPlane, far_limit, intent, order_stub, venue_orders

S = order_pb2


@pytest.fixture(scope="module")
def order_plane(order_env):
    plane = OrderPlane(order_env).start()
    yield plane
    plane.stop()


async def stored_orders(database_url: str, prefix: str) -> dict[str, int]:
    """client id -> how many orders the order plane stored under it, for ids starting with `prefix`."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT client_order_id, count(*) FROM orders.orders WHERE client_order_id LIKE $1"
                                " GROUP BY client_order_id", prefix + "%")
    finally:
        await conn.close()
    return {r[0]: r[1] for r in rows}


async def test_every_intent_of_a_stream_is_answered_once_by_its_client_id(stub, database_url):
    seen = await stub.Submit(S.SubmitRequest(intent=far_limit("st-seen")))
    # More intents than the plane works on at once (256), so reading must wait for answers and resume.
    plain = [far_limit(f"st-{n}") for n in range(300)]
    odd = [intent("st-bad", quantity="-5"), far_limit("st-seen"),
           intent("st-big", quantity="5000000"),  # above max_order_quantity: refused and recorded
           far_limit("st-0")]  # the same id twice in one call: one order, the second answer a duplicate
    requests = [S.SubmitStreamRequest(intent=i) for i in [*plain[:150], *odd, *plain[150:]]]
    requests.append(S.SubmitStreamRequest())  # no intent at all

    call = stub.SubmitStream(iter(requests))
    answers = [reply async for reply in call]

    assert len(answers) == len(requests)
    by_id: dict[str, list] = {}
    for reply in answers:
        by_id.setdefault(reply.client_order_id, []).append(reply.result)
    assert sorted(len(v) for k, v in by_id.items() if k not in ("st-0", "")) == [1] * (len(plain) + 2)
    first, again = sorted(by_id["st-0"], key=lambda r: r.duplicate)
    assert (first.status, first.duplicate, again.duplicate) == ("OK", False, True)
    assert again.order.order_id == first.order.order_id
    assert all(r.status == "OK" and r.order.state == S.ORDER_STATE_NEW for k, v in by_id.items()
               if k.startswith("st-") and k[3:].isdigit() for r in v)
    assert len({v[0].order.order_id for k, v in by_id.items() if k[3:].isdigit()}) == len(plain)
    (bad,) = by_id["st-bad"]
    assert bad.status == "INVALID_ARGUMENT" and "quantity" in bad.message and not bad.HasField("order")
    (dup,) = by_id["st-seen"]
    assert (dup.status, dup.duplicate, dup.order.order_id) == ("OK", True, seen.order.order_id)
    (big,) = by_id["st-big"]
    assert big.status == "FAILED_PRECONDITION" and "risk.max_order_quantity" in big.message
    assert big.order.state == S.ORDER_STATE_REJECTED
    (empty,) = by_id[""]
    assert empty.status == "INVALID_ARGUMENT" and "intent is missing" in empty.message
    # What the answers say is what the store and the venue hold: one order per id, one venue order per accepted id.
    stored = await stored_orders(database_url, "st-")
    assert set(stored.values()) == {1} and set(stored) == {f"st-{n}" for n in range(300)} | {"st-seen", "st-big"}
    assert await venue_orders(database_url, "st-299") == 1 and await venue_orders(database_url, "st-big") == 0


async def test_a_caller_that_cancels_the_stream_leaves_each_intent_stored_at_most_once(stub, database_url):
    cids = [f"sc-{n}" for n in range(200)]
    call = stub.SubmitStream(S.SubmitStreamRequest(intent=far_limit(cid)) for cid in cids)
    first = await call.read()
    call.cancel()
    assert first.result.status == "OK"
    # The retry a client makes after losing its stream: every id again, one Submit each.
    retries = await asyncio.gather(*(stub.Submit(S.SubmitRequest(intent=far_limit(cid))) for cid in cids))
    assert all(r.order.state == S.ORDER_STATE_NEW for r in retries)
    by_id = {cid: r for cid, r in zip(cids, retries)}
    assert by_id[first.client_order_id].duplicate and \
        by_id[first.client_order_id].order.order_id == first.result.order.order_id
    stored = await stored_orders(database_url, "sc-")
    assert stored == {cid: 1 for cid in cids}
    conn = await asyncpg.connect(database_url)
    try:
        at_venue = await conn.fetchval("SELECT count(*) FROM paper_venue.orders WHERE client_order_id LIKE 'sc-%'")
    finally:
        await conn.close()
    assert at_venue == len(cids)


async def test_a_message_that_does_not_decode_ends_the_stream_with_invalid_argument(order_plane):
    good = S.SubmitStreamRequest(intent=far_limit("su-1")).SerializeToString()
    async with grpc.aio.insecure_channel(order_plane.address) as channel:
        raw = channel.stream_stream("/quantmesh.order.v1.Order/SubmitStream",
                                    request_serializer=lambda b: b, response_deserializer=S.SubmitStreamResponse.FromString)
        call = raw(iter([good, b"\x0a\xff\xff\xff"]))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in call:
                pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in refused.value.details()
    assert "SubmitStream" in refused.value.details()


async def test_the_stream_needs_the_strategy_or_operator_role(order_plane):
    # The same plane with tokens (one writer per database: the plane restarts rather than a second one starting).
    await asyncio.to_thread(order_plane.stop)
    await asyncio.to_thread(order_plane.start, QUANTMESH_TOKENS="st-token=ma_cross:strategy,sv-token=feeder:service")
    try:
        async with grpc.aio.insecure_channel(order_plane.address) as channel:
            stub = order_stub(channel)

            async def answers(metadata=None):
                call = stub.SubmitStream(iter([S.SubmitStreamRequest(intent=far_limit("sa-1"))]), metadata=metadata)
                return [reply async for reply in call]

            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await answers()
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as service:
                await answers((("authorization", "Bearer sv-token"),))
            assert service.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "needs the operator or strategy role; feeder has the service role" in service.value.details()
            (ok,) = await answers((("authorization", "Bearer st-token"),))
            assert (ok.client_order_id, ok.result.status) == ("sa-1", "OK")
    finally:
        await asyncio.to_thread(order_plane.stop)
        await asyncio.to_thread(order_plane.start)
