"""A quiet stream survives the planes' own keepalive pings: the servers permit what the clients send.

Clients (services/common/channels.py) ping every KEEPALIVE_TIME_MS, also while a stream carries no
data. A server that allows fewer pings answers the third early one with GOAWAY "too_many_pings"
and drops every stream on the connection: the position plane's WatchFills between two fills.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.auth import TokenTable
from services.common.channels import KEEPALIVE_TIME_MS, open_channel
from services.common.server import SERVER_KEEPALIVE, GrpcHost, binding

QUIET_SECONDS = 4 * KEEPALIVE_TIME_MS / 1000  # a fourth ping: the third early one is what a strict server refuses


class QuietControl(control_pb2_grpc.ControlServicer):
    async def WatchFlags(self, request, context):
        yield control_pb2.WatchFlagsResponse(seq=1)
        await asyncio.sleep(QUIET_SECONDS)  # nothing to say for a while, as between two fills
        yield control_pb2.WatchFlagsResponse(seq=2)


def test_the_server_permits_the_pings_the_clients_send():
    options = dict(SERVER_KEEPALIVE)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= KEEPALIVE_TIME_MS


@pytest.mark.timeout(120)
async def test_a_quiet_stream_is_not_dropped_by_keepalive():
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(""), policy={}, bindings=[
        binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server, QuietControl())])
    await host.start()
    try:
        async with open_channel(host.address, traced=False) as channel:
            stream = control_pb2_grpc.ControlStub(channel).WatchFlags(control_pb2.WatchFlagsRequest())
            seqs = [event.seq async for event in stream]
    except grpc.aio.AioRpcError as exc:
        pytest.fail(f"the quiet stream was dropped: {exc.code().name} {exc.details()}")
    finally:
        await host.stop()
    assert seqs == [1, 2]
