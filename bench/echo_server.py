"""A bare grpc.aio unary echo server: the floor under any gRPC plane on this machine.

`./qm python bench/echo_server.py ADDRESS` serves /quantmesh.order.v1.Order/Submit answering
every request with a fixed SubmitResponse-sized reply, with no interceptors, no parsing
beyond what grpc itself does, and no I/O. bench/order_submit.py drives it with the very
client loop it drives the order plane with.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import grpc



def typical_reply() -> bytes:
    """A SubmitResponse as the order plane sends it for a resting limit order."""
    from quantmesh.common.v1 import common_pb2
    from quantmesh.order.v1 import order_pb2

    intent = order_pb2.OrderIntent(
        client_order_id="c8-123456", strategy_slug="bench", role=common_pb2.STRATEGY_ROLE_ENTRY,
        instrument="USD_JPY", side=common_pb2.SIDE_BUY, quantity="1000", order_type=order_pb2.ORDER_TYPE_LIMIT,
        limit_price="1.000", time_in_force=order_pb2.TIME_IN_FORCE_GTC, account="paper")
    order = order_pb2.OrderRecord(order_id="ord-000000012345", intent=intent, state=order_pb2.ORDER_STATE_NEW,
                                  filled_quantity="0", commission="0", broker_order_id="paper-12345", broker="paper")
    order.created_time.GetCurrentTime()
    order.updated_time.GetCurrentTime()
    return order_pb2.SubmitResponse(order=order).SerializeToString()


async def serve(address: str) -> None:
    reply = typical_reply()

    async def submit(request: bytes, context) -> bytes:
        return reply

    handler = grpc.method_handlers_generic_handler("quantmesh.order.v1.Order", {
        "Submit": grpc.unary_unary_rpc_method_handler(submit, request_deserializer=None, response_serializer=None)})
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(address)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    asyncio.run(serve(sys.argv[1]))
