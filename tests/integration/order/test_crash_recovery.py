"""kill -9 between the broker's acceptance and storing it: one correct state, one venue order."""

from __future__ import annotations

import grpc
import pytest

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import (OrderPlane, far_limit, intent, order_stub, venue_orders,
                                              wait_for_state)

S = order_pb2


@pytest.fixture(scope="module")
def plane(order_env):
    plane = OrderPlane(order_env)
    yield plane
    plane.stop()


@pytest.mark.parametrize("cid, make, final", [
    ("crash-market", intent, {S.ORDER_STATE_FILLED}),
    ("crash-limit", far_limit, {S.ORDER_STATE_NEW}),
])
async def test_after_a_kill_9_the_order_ends_in_the_venues_state_with_one_venue_order(plane, database_url, cid,
                                                                                       make, final):
    plane.start(QUANTMESH_FAULT="crash_after_broker_submit")
    async with grpc.aio.insecure_channel(plane.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await order_stub(channel).Submit(S.SubmitRequest(intent=make(cid)))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert plane.process.proc.wait(10) == -9
    assert await venue_orders(database_url, cid) == 1  # the venue took it before the crash

    plane.start()  # no fault: recovery asks the venue by client id
    async with grpc.aio.insecure_channel(plane.address) as channel:
        stub = order_stub(channel)
        reply = await wait_for_state(stub, cid, final)
        assert reply.order.state in final and reply.order.broker_order_id.startswith("paper-")
        retry = await stub.Submit(S.SubmitRequest(intent=make(cid)))
        assert retry.duplicate and retry.order.order_id == reply.order.order_id
    assert await venue_orders(database_url, cid) == 1
    if final == {S.ORDER_STATE_FILLED}:
        assert len(reply.fills) == 1 and reply.order.filled_quantity == "1000"
    plane.stop()


async def test_entries_fail_closed_without_the_position_plane(order_env, database_url):
    plane = OrderPlane({**order_env, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": "127.0.0.1:9"}).start()
    try:
        async with grpc.aio.insecure_channel(plane.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await order_stub(channel).Submit(S.SubmitRequest(intent=far_limit("no-ledger")))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "risk.exposure_stale: no exposure view from the position plane" in error.value.details()
    finally:
        plane.stop()
