"""WatchFlags: snapshot on connect, every version to every watcher in order, heartbeats, slow watchers."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quantmesh.control.v1 import control_pb2 as pb
from quantmesh.control.v1 import control_pb2_grpc


async def test_25_watchers_see_every_version_in_order(control):
    watchers, changes = 25, 40
    channels = [grpc.aio.insecure_channel(control.address) for _ in range(watchers)]
    first_version = (await control.stub.GetFlags(pb.GetFlagsRequest())).snapshot.version
    last_version = first_version + changes
    connected = [asyncio.Event() for _ in range(watchers)]

    async def watch(index: int) -> tuple[list[int], list[int]]:
        versions, seqs = [], []
        call = control_pb2_grpc.ControlStub(channels[index]).WatchFlags(pb.WatchFlagsRequest())
        async for message in call:
            seqs.append(message.seq)
            connected[index].set()
            if not message.heartbeat:
                versions.append(message.snapshot.version)
            if message.snapshot.version >= last_version:
                call.cancel()
                break
        return versions, seqs

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in connected)), 60)
    for i in range(changes):
        # alternate the lock so every call is a real change
        await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=i % 2 == 0, reason=f"toggle {i}"))
    results = await asyncio.wait_for(asyncio.gather(*tasks), 120)
    for versions, seqs in results:
        assert versions == list(range(first_version, last_version + 1))
        assert seqs == list(range(1, len(seqs) + 1))
    for channel in channels:
        await channel.close()


@pytest.fixture
def tracing():
    from opentelemetry import trace

    from services.common.telemetry import setup_tracing

    if not hasattr(trace.get_tracer_provider(), "add_span_processor"):  # nothing installed yet in this process
        setup_tracing("control-tests", None)


async def test_snapshot_on_connect_then_heartbeats_with_the_same_snapshot(tracing, control):
    await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill"))
    call = control.stub.WatchFlags(pb.WatchFlagsRequest(heartbeat_seconds=1))
    first = await call.read()
    assert (first.seq, first.heartbeat, first.snapshot.version, first.snapshot.global_lock) == (1, False, 2, True)
    assert first.trace_context.traceparent.startswith("00-")  # the change's trace, joined by the watcher
    beat = await asyncio.wait_for(call.read(), 10)
    assert (beat.seq, beat.heartbeat, beat.snapshot.version) == (2, True, 2)
    assert beat.snapshot == first.snapshot
    assert beat.sent_time.ToNanoseconds() >= first.sent_time.ToNanoseconds()
    await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=False, reason="drill over"))
    while True:  # a heartbeat may have been sent just before the change
        change = await asyncio.wait_for(call.read(), 10)
        if not change.heartbeat:
            break
    assert (change.snapshot.version, change.snapshot.global_lock) == (3, False)
    call.cancel()


async def test_too_long_heartbeat_is_invalid_argument(control):
    call = control.stub.WatchFlags(pb.WatchFlagsRequest(heartbeat_seconds=100_000))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "heartbeat_seconds 100000" in err.value.details()


async def test_a_watcher_that_falls_behind_is_cut_off_with_resource_exhausted(control_factory):
    from services.common.errors import ResourceExhausted

    control = await control_factory(watch_queue_size=3)
    fast = control.stub.WatchFlags(pb.WatchFlagsRequest(heartbeat_seconds=3600))
    assert (await fast.read()).snapshot.version == 1
    # A subscription that is not read while the changes happen (gRPC's socket
    # buffers would hide a slow network reader, so the engine's queue is used directly).
    current, slow = control.engine.follow()
    seen = []
    for i in range(8):
        await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_exit_enabled=i % 2 == 1))
        seen.append((await asyncio.wait_for(fast.read(), 10)).snapshot.version)
    assert seen == list(range(2, 10))  # the fast watcher is not slowed by the slow one
    versions = []
    with pytest.raises(ResourceExhausted) as err:
        while True:
            versions.append((await slow.next())[0])
    assert "cut off" in err.value.message
    assert versions == [2, 3, 4]  # every version up to the cut (queue of 3), no gap
    assert control.engine.watcher_count == 1  # only the fast watcher is left
    assert current.state.version == 1
    fast.cancel()
