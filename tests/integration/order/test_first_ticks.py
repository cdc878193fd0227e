"""A fresh mesh misses no tick: the order plane serves only once its paper venue hears market_data.

The order plane is started before market_data (as in a mesh whose processes all start at
once), market_data's push feed a moment later. As soon as both say SERVING, a market order
is submitted and exactly one quote is pushed: the paper venue must fill the order at that
quote. Before the order plane waited for its tick stream, it served while still backing off
between connection attempts, and a quote pushed then passed the venue by: the order stayed
NEW for good (seen in CI, tests/e2e/test_analysis_mesh.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import grpc

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2
from tests.integration.order.conftest import LOG_DIR, intent, order_stub, wait_for_state
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess


async def test_the_first_quote_pushed_into_a_fresh_mesh_fills_a_market_order(database_url, control):
    market_address, order_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    order = PlaneProcess("services.order", {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": order_address, "QUANTMESH_CONTROL_ADDR": control,
        "QUANTMESH_MARKET_DATA_ADDR": market_address, "QUANTMESH_POSITIONS_SOURCE": "own_book",
        "QUANTMESH_INSTRUMENTS": "USD_JPY"}, LOG_DIR).start()
    market = PlaneProcess("services.market_data", {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": market_address, "QUANTMESH_FEED": "push",
        "QUANTMESH_INSTRUMENTS": "USD_JPY"}, LOG_DIR).start()
    try:
        market.wait_healthy(market_address)
        order.wait_healthy(order_address)
        async with grpc.aio.insecure_channel(order_address) as channel, \
                grpc.aio.insecure_channel(market_address) as market_channel:
            stub = order_stub(channel)
            reply = await stub.Submit(order_pb2.SubmitRequest(intent=intent("first-tick-1")))
            assert reply.order.state == order_pb2.ORDER_STATE_NEW, reply.order.reason
            tick = market_data_pb2.Tick(instrument="USD_JPY", bid="93.101", ask="93.113")
            tick.time.FromDatetime(datetime(2013, 2, 5, 9, 0, 1, tzinfo=timezone.utc))
            await market_data_pb2_grpc.MarketDataStub(market_channel).PublishTicks(
                market_data_pb2.PublishTicksRequest(ticks=[tick]))
            filled = await wait_for_state(stub, "first-tick-1", {order_pb2.ORDER_STATE_FILLED}, timeout=20)
        assert filled.order.state == order_pb2.ORDER_STATE_FILLED, (
            f"the only quote pushed did not reach the paper venue: the order is "
            f"{order_pb2.OrderState.Name(filled.order.state)}")
        assert Decimal(filled.order.average_fill_price) == Decimal("93.113")  # a buy fills at the ask
    finally:
        order.terminate()
        market.terminate()
