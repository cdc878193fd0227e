"""What every plane inherits from services.common.server: health, reflection, auth, drain."""

from __future__ import annotations

import asyncio

import time

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.auth import Role, TokenTable, bearer_metadata, current_identity
from services.common.errors import InvalidArgument
from services.common.server import GrpcHost, binding
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

OPERATOR, STRATEGY = "op-token", "strat-token"


class EchoControl(control_pb2_grpc.ControlServicer):
    async def GetFlags(self, request, context):
        return control_pb2.GetFlagsResponse(snapshot=control_pb2.FlagSnapshot(version=1))

    async def SetGlobalFlags(self, request, context):
        if not request.reason:
            raise InvalidArgument("a reason is required")
        who = current_identity()
        return control_pb2.SetGlobalFlagsResponse(snapshot=control_pb2.FlagSnapshot(version=2, strategies=[
            control_pb2.StrategyFlags(slug=who.actor, note=who.role.value)]))


@pytest.fixture
async def host():
    host = GrpcHost(
        listen="127.0.0.1:0",
        bindings=[
            binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server, EchoControl()),
            binding(order_pb2, "Order", order_pb2_grpc.add_OrderServicer_to_server, order_pb2_grpc.OrderServicer()),
        ],
        tokens=TokenTable.parse(f"{OPERATOR}=alice:operator,{STRATEGY}=ma_cross:strategy"),
        policy={"/quantmesh.control.v1.Control/SetGlobalFlags": frozenset({Role.OPERATOR})},
    )
    await host.start()
    yield host
    await host.stop()


async def test_health_answers_serving(host):
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "quantmesh.control.v1.Control"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_watch_streams_through_every_interceptor(host):
    """grpc's own Health.Watch writes through its context instead of yielding: it must still stream."""
    async with grpc.aio.insecure_channel(host.address) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        first = await asyncio.wait_for(call.read(), 5)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        await host.set_serving(False)
        second = await asyncio.wait_for(call.read(), 5)
        assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
        call.cancel()
        await host.set_serving(True)


async def test_reflection_lists_services_with_their_comments(host):
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="quantmesh.control.v1.Control")]
        replies = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"quantmesh.control.v1.Control", "quantmesh.order.v1.Order", "grpc.health.v1.Health"} <= names
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in replies[1].file_descriptor_response.file_descriptor_proto]
    control_file = next(f for f in files if f.name == "quantmesh/control/v1/control.proto")
    comments = " ".join(loc.leading_comments for loc in control_file.source_code_info.location)
    assert "pushes a new versioned snapshot" in comments
    assert "Locking or unlocking needs a reason" in comments


async def test_auth_unauthenticated_then_wrong_role_then_right_role(host):
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        request = control_pb2.SetGlobalFlagsRequest(global_lock=True, reason="drill")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.SetGlobalFlags(request)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "authorization: Bearer" in missing.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.SetGlobalFlags(request, metadata=bearer_metadata("forged"))
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as wrong_role:
            await stub.SetGlobalFlags(request, metadata=bearer_metadata(STRATEGY))
        assert wrong_role.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs the operator role; ma_cross has the strategy role" in wrong_role.value.details()
        reply = await stub.SetGlobalFlags(request, metadata=bearer_metadata(OPERATOR))
        assert reply.snapshot.strategies[0].slug == "alice"  # the handler saw the caller's identity
        # a read needs a valid token but no particular role
        assert (await stub.GetFlags(control_pb2.GetFlagsRequest(), metadata=bearer_metadata(STRATEGY))).snapshot.version == 1


async def test_plane_error_becomes_status_with_its_sentence(host):
    async with grpc.aio.insecure_channel(host.address) as channel:
        stub = control_pb2_grpc.ControlStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.SetGlobalFlags(control_pb2.SetGlobalFlagsRequest(), metadata=bearer_metadata(OPERATOR))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details() == "a reason is required"


def test_sigterm_drains_the_in_flight_call_and_stops(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    plane = PlaneProcess("tests.support.slow_plane", {"QUANTMESH_LISTEN": address}, tmp_path).start()
    try:
        plane.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            future = control_pb2_grpc.ControlStub(channel).GetFlags.future(control_pb2.GetFlagsRequest(), timeout=10)
            time.sleep(0.5)  # the call is in flight
            plane.proc.send_signal(15)
            reply = future.result()
            assert reply.snapshot.version == 7  # drained, not cut
        assert plane.proc.wait(15) == 0
        with grpc.insecure_channel(address) as channel, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    finally:
        plane.kill()
