"""Order.SubmitStream against a real order process on PostgreSQL: one call, many intents,
each answered once by its client id; a caller that leaves stops the answers, never the work."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import OrderPlane, far_limit, intent, order_stub, venue_orders
from tests.support.otlp import OtlpReceiver

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
        call = raw()
        await call.write(good)
        await call.write(b"\x0a\xff\xff\xff")  # the last write: the plane ends the call once it reads it
        code, details = await call.code(), await call.details()
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in details and "SubmitStream" in details


async def test_the_stream_needs_the_strategy_or_operator_role(order_plane):
    # The same plane with tokens (one writer per database: the plane restarts rather than a second one starting).
    await asyncio.to_thread(order_plane.stop)
    await asyncio.to_thread(order_plane.start, QUANTMESH_TOKENS="st-token=ma_cross:strategy,sv-token=feeder:service")
    try:
        async with grpc.aio.insecure_channel(order_plane.address) as channel:
            stub = order_stub(channel)

            async def refused(metadata=None) -> tuple[grpc.StatusCode, str]:
                # Nothing written: the refusal comes as the call starts (a write racing it would fail
                # on the client's side, before the server's status is read).
                call = stub.SubmitStream(metadata=metadata)
                return await call.code(), await call.details()

            anonymous = await refused()
            assert anonymous[0] == grpc.StatusCode.UNAUTHENTICATED
            service = await refused((("authorization", "Bearer sv-token"),))
            assert service[0] == grpc.StatusCode.PERMISSION_DENIED
            assert "needs the operator or strategy role; feeder has the service role" in service[1]
            call = stub.SubmitStream(metadata=(("authorization", "Bearer st-token"),))
            await call.write(S.SubmitStreamRequest(intent=far_limit("sa-1")))
            await call.done_writing()
            (ok,) = [reply async for reply in call]
            assert (ok.client_order_id, ok.result.status) == ("sa-1", "OK")
    finally:
        await asyncio.to_thread(order_plane.stop)
        await asyncio.to_thread(order_plane.start)


async def test_with_tracing_each_intent_joins_the_trace_it_carries(order_plane):
    """The OpenTelemetry server interceptor wraps the bidi call too; each intent's order.submit span
    continues the decision named by the intent's traceparent, not the stream's own span."""
    decisions = [f"{n:032x}" for n in (0xA1, 0xB2)]
    with OtlpReceiver() as receiver:
        await asyncio.to_thread(order_plane.stop)
        await asyncio.to_thread(order_plane.start, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                                OTEL_BSP_SCHEDULE_DELAY="100")
        try:
            async with grpc.aio.insecure_channel(order_plane.address) as channel:
                requests = [S.SubmitStreamRequest(intent=far_limit(f"sx-{n}", trace_context=common_pb2.TraceContext(
                    traceparent=f"00-{trace}-{n + 1:016x}-01"))) for n, trace in enumerate(decisions)]
                answers = [reply async for reply in order_stub(channel).SubmitStream(iter(requests))]
        finally:
            await asyncio.to_thread(order_plane.stop)  # SIGTERM flushes the plane's last spans
            await asyncio.to_thread(order_plane.start)
        spans = receiver.spans()
    assert sorted(a.client_order_id for a in answers) == ["sx-0", "sx-1"]
    assert all(a.result.status == "OK" for a in answers)
    submits = {s.trace_id: s for s in spans if s.name == "order.submit"}
    assert set(decisions) <= set(submits)
    assert [submits[t].parent_id for t in decisions] == [f"{n + 1:016x}" for n in range(2)]
    assert any(s.name == "/quantmesh.order.v1.Order/SubmitStream" for s in spans)
