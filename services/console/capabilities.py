"""Which optional order-plane actions the console may offer: asked of the plane, not assumed.

"Cancel open orders" and "flatten" belong to the order plane; the console shows their buttons
only when both hold:

1. the running order plane serves the RPC (its server reflection lists the method on
   quantmesh.order.v1.Order), so a console never offers what the plane behind it lacks;
2. the console knows how to call it: an entry in `ORDER_ACTIONS` below.

To wire one once the RPC is in order.proto (and `./qm gen` has run): add its method name and a
function that sends it with the console's stubs, e.g.

    async def cancel_open(planes, operator, reason):
        request = order_pb2.CancelOpenOrdersRequest(reason=attributed(operator, reason))
        return await planes.order.CancelOpenOrders(request, timeout=5)

    ORDER_ACTIONS = {"cancel-open": OrderAction("CancelOpenOrders", cancel_open), ...}

The page and `POST /api/cancel-open` / `POST /api/flatten` then work with no other change;
until then the API answers 501 with the reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

ORDER_SERVICE = "quantmesh.order.v1.Order"


@dataclass(frozen=True, slots=True)
class OrderAction:
    method: str  # the RPC on quantmesh.order.v1.Order
    send: Callable[..., Awaitable[object]]  # (planes, operator, reason) -> the plane's answer


#: The optional actions the console can send, by their API name. Empty until the order plane's
#: contract has them; see the module's docstring.
ORDER_ACTIONS: Mapping[str, OrderAction] = MappingProxyType({})
#: The API names the page knows, and the RPC each will need.
OPTIONAL_ACTIONS: Mapping[str, str] = MappingProxyType({"cancel-open": "CancelOpenOrders", "flatten": "Flatten"})


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
