"""What a caller sees when a servicer fails unexpectedly or the request bytes are garbage:
INTERNAL with an error id (the traceback in the log under that id), or INVALID_ARGUMENT;
never UNKNOWN with a Python exception's text."""

from __future__ import annotations

import logging
import re

import grpc
import pytest

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.auth import TokenTable
from services.common.errors import NotFound
from services.common.server import GrpcHost, binding

SECRET = "SELECT secret FROM plane_internals"


class Failing(control_pb2_grpc.ControlServicer):
    async def GetFlags(self, request, context):
        raise OverflowError(f"date value out of range in {SECRET}")

    async def SetGlobalFlags(self, request, context):
        raise NotFound("no such thing")

    async def WatchFlags(self, request, context):
        yield control_pb2.WatchFlagsResponse(seq=1)
        raise ValueError(f"naive datetimes are not allowed ({SECRET})")


@pytest.fixture
async def channel():
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable(), policy={},
                    bindings=[binding(control_pb2, "Control", control_pb2_grpc.add_ControlServicer_to_server,
                                      Failing())])
    await host.start()
    async with grpc.aio.insecure_channel(host.address) as channel:
        yield channel
    await host.stop()


def internal_error_id(error: grpc.aio.AioRpcError) -> str:
    assert error.code() == grpc.StatusCode.INTERNAL, (error.code(), error.details())
    assert SECRET not in error.details() and "Error" not in error.details()
    match = re.fullmatch(r"internal error ([0-9a-f]{12}); the plane's log has the details", error.details())
    assert match, error.details()
    return match.group(1)


async def test_an_unexpected_exception_is_internal_with_an_id_that_finds_the_traceback(channel, caplog):
    caplog.set_level(logging.ERROR, logger="services.common.server")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await control_pb2_grpc.ControlStub(channel).GetFlags(control_pb2.GetFlagsRequest())
    error_id = internal_error_id(error.value)
    logged = [r for r in caplog.records if getattr(r, "error_id", None) == error_id]
    assert len(logged) == 1 and logged[0].exc_info[0] is OverflowError
    assert "/quantmesh.control.v1.Control/GetFlags" in logged[0].getMessage()


async def test_a_stream_that_fails_after_its_first_message_ends_internal_too(channel, caplog):
    caplog.set_level(logging.ERROR, logger="services.common.server")
    call = control_pb2_grpc.ControlStub(channel).WatchFlags(control_pb2.WatchFlagsRequest())
    assert (await call.read()).seq == 1
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call.read()
    error_id = internal_error_id(error.value)
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)


async def test_plane_errors_keep_their_code_and_sentence(channel):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await control_pb2_grpc.ControlStub(channel).SetGlobalFlags(control_pb2.SetGlobalFlagsRequest())
    assert (error.value.code(), error.value.details()) == (grpc.StatusCode.NOT_FOUND, "no such thing")


@pytest.mark.parametrize("method, streaming, raw", [
    ("SetGlobalFlags", False, b"\xff\xff\xff"),      # not protobuf at all
    ("SetGlobalFlags", False, b"\n"),                  # truncated
    ("SetGlobalFlags", False, b"\x22\x02\xff\xfe"),   # reason (field 4) is not UTF-8
    ("WatchFlags", True, b"\xff\xff\xff"),
    ("WatchFlags", True, b"\x08"),                     # heartbeat_seconds without its value
])
async def test_undecodable_bytes_are_invalid_argument(channel, method, streaming, raw):
    path = f"/quantmesh.control.v1.Control/{method}"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        if streaming:
            await channel.unary_stream(path)(raw).read()
        else:
            await channel.unary_unary(path)(raw)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    assert f"the request to {path} is not a valid protobuf message" in error.value.details()
