"""Which order-plane actions the console may offer: asked of the plane, not assumed.

"Cancel open orders" (Order.CancelOpen) and "flatten" (Order.Flatten) belong to the order
plane; the console shows their buttons only when both hold:

1. the running order plane serves the RPC (its server reflection lists the method on
   quantmesh.order.v1.Order), so a console in front of an older plane never offers it;
2. the console knows how to send it: an entry in `ORDER_ACTIONS` below.

Until then `POST /api/cancel-open` and `POST /api/flatten` answer 501 with the reason. A new
optional action is one more `OrderAction` here (its method name and how to send it); the page
and the API need no other change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from quantmesh.order.v1 import order_pb2
from services.console import views
from services.console.operators import Operator
from services.console.planes import Planes, attributed
from services.console.requests import Sweep

ORDER_SERVICE = "quantmesh.order.v1.Order"

Send = Callable[[Planes, Operator, Sweep], Awaitable[dict]]


@dataclass(frozen=True, slots=True)
class OrderAction:
    method: str  # the RPC on quantmesh.order.v1.Order
    send: Send   # the answer as JSON


async def cancel_open(planes: Planes, operator: Operator, sweep: Sweep) -> dict:
    reply = await planes.order_action("CancelOpen", order_pb2.CancelOpenRequest(
        strategy_slug=sweep.strategy, instrument=sweep.instrument, reason=attributed(operator, sweep.reason)))
    return {"canceled": [views.order(o) for o in reply.canceled], "failures": list(reply.failures)}


async def flatten(planes: Planes, operator: Operator, sweep: Sweep) -> dict:
    reply = await planes.order_action("Flatten", order_pb2.FlattenRequest(
        strategy_slug=sweep.strategy, instrument=sweep.instrument, reason=attributed(operator, sweep.reason)))
    return {"orders": [views.order(o) for o in reply.orders], "canceled": [views.order(o) for o in reply.canceled],
            "failures": list(reply.failures)}


#: The actions the console can send, by their API name.
ORDER_ACTIONS: Mapping[str, OrderAction] = MappingProxyType({
    "cancel-open": OrderAction("CancelOpen", cancel_open),
    "flatten": OrderAction("Flatten", flatten),
})


async def order_methods(channel: grpc.aio.Channel, *, timeout: float = 3.0) -> frozenset[str]:
    """The methods the order plane's server reflection lists on its Order service."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        file_containing_symbol=ORDER_SERVICE)]), timeout=timeout)
    methods: set[str] = set()
    async for reply in call:
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for service in proto.service:
                if f"{proto.package}.{service.name}" == ORDER_SERVICE:
                    methods.update(m.name for m in service.method)
    return frozenset(methods)


def offered(methods: frozenset[str], actions: Mapping[str, OrderAction] = ORDER_ACTIONS) -> frozenset[str]:
    """The API names of the actions both the plane serves and the console can send."""
    return frozenset(name for name, action in actions.items() if action.method in methods)
