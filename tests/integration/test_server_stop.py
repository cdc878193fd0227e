"""A stopping server ends its streams at once and still lets unary calls finish.

Streams never end by themselves: left to the drain they held every stop for the whole grace
period (5 s per plane, and the order and position planes each hold the other's streams). Now
health watchers hear NOT_SERVING, every stream ends with UNAVAILABLE and a sentence (clients
reconnect and resume), and the grace period is what unary calls in flight get.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.auth import TokenTable
from services.common.channels import open_channel
from services.common.server import GrpcHost, binding

GRACE_SECONDS = 3600.0  # what the old drain would have waited for a stream: far beyond the test's timeout


class EndlessControl(control_pb2_grpc.ControlServicer):
    def __init__(self) -> None:
        self.unary_started = asyncio.Event()
        self.release_unary = asyncio.Event()

    async def WatchFlags(self, request, context):
        yield control_pb2.WatchFlagsResponse(seq=1)
        await asyncio.Event().wait()  # a stream with nothing more to say, ever

    async def GetFlags(self, request, context):
        self.unary_started.set()
        await self.release_unary.wait()  # in flight while the server stops
        return control_pb2.GetFlagsResponse()


@pytest.mark.timeout(120)
async def test_stop_ends_streams_with_unavailable_and_lets_a_unary_call_finish():
    servicer = EndlessControl()
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(""), policy={}, grace_seconds=GRACE_SECONDS,
                    bindings=[binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server,
                                      servicer)])
    await host.start()
    async with open_channel(host.address, traced=False) as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        stream = stub.WatchFlags(control_pb2.WatchFlagsRequest())
        assert (await stream.read()).seq == 1
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        unary = asyncio.ensure_future(stub.GetFlags(control_pb2.GetFlagsRequest()))
        await servicer.unary_started.wait()

        stopping = asyncio.create_task(host.stop())
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await stream.read()
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "the server is stopping; reconnect" in ended.value.details()
        # The health watcher is told NOT_SERVING before its stream ends.
        statuses = []
        with pytest.raises(grpc.aio.AioRpcError) as watch_ended:
            while True:
                statuses.append((await watch.read()).status)
        assert statuses == [health_pb2.HealthCheckResponse.NOT_SERVING]
        assert watch_ended.value.code() == grpc.StatusCode.UNAVAILABLE
        # The unary call is still being served: the grace period is its.
        assert not unary.done() and not stopping.done()
        servicer.release_unary.set()
        assert isinstance(await unary, control_pb2.GetFlagsResponse)
        await stopping  # with the unary call answered, nothing holds the stop


async def test_a_client_that_cancels_its_stream_is_not_answered_as_a_stop():
    servicer = EndlessControl()
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(""), policy={},
                    bindings=[binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server,
                                      servicer)])
    await host.start()
    try:
        async with open_channel(host.address, traced=False) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            stream = stub.WatchFlags(control_pb2.WatchFlagsRequest())
            assert (await stream.read()).seq == 1
            stream.cancel()
            assert await stream.code() == grpc.StatusCode.CANCELLED
            # The server keeps serving others after a client went away.
            again = stub.WatchFlags(control_pb2.WatchFlagsRequest())
            assert (await again.read()).seq == 1
            again.cancel()
    finally:
        await host.stop()
