"""An order plane started before its position plane serves once the first exposure view is in,
so the first entry of a fresh mesh is judged, not refused as risk.exposure_stale."""

from __future__ import annotations

import asyncio

import grpc

from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import LOG_DIR, OrderPlane, far_limit, order_stub
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

S = order_pb2


async def test_the_first_entry_after_both_planes_start_is_not_refused_as_stale(order_env, database_url):
    position_addr = f"127.0.0.1:{free_port()}"
    order = OrderPlane({**order_env, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": position_addr})
    position = PlaneProcess("services.position", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr,
                                                  "QUANTMESH_ORDER_ADDR": order.address,
                                                  "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"]},
                            LOG_DIR)
    starting = asyncio.create_task(asyncio.to_thread(order.start))  # returns once the order plane is SERVING
    try:
        await asyncio.sleep(1.0)  # the position plane comes up later, as it may in kind or under load
        await asyncio.to_thread(position.start)
        await starting
        async with grpc.aio.insecure_channel(order.address) as channel:
            reply = await order_stub(channel).Submit(S.SubmitRequest(intent=far_limit("first-entry")))
        assert reply.order.state == S.ORDER_STATE_NEW, (reply.order.reject_rule, reply.order.reason)
    finally:
        await starting
        position.terminate()
        order.stop()
