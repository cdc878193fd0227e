"""Acknowledged means enforced: a flag change answers after the guards (order planes) enforce it.

A guard subscribes to WatchFlags with its name and acknowledges each version with AckFlags;
SetGlobalFlags names who enforces the new version and who does not within the wait.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quantmesh.control.v1 import control_pb2 as pb
from services.common.flags import FlagsFollower
from tests.integration.control.conftest import start_control, stop_control


@pytest.fixture
async def control(postgres_admin_url):
    running = await start_control(postgres_admin_url)
    running.engine._guard_ack_seconds = 0.5  # the wait for a silent guard, kept short for the test
    yield running
    await stop_control(running)


async def test_without_guards_the_change_says_so(control):
    reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="no guard yet"))
    assert list(reply.enforced_by) == [] and list(reply.not_enforced_by) == []
    assert reply.snapshot.global_lock and reply.snapshot.lock_cancels_open_orders


async def test_a_silent_guard_is_named_and_an_acknowledging_one_counts(control):
    silent = control.stub.WatchFlags(pb.WatchFlagsRequest(guard="order@silent"))
    await silent.read()  # connected: it got the snapshot, and will never acknowledge
    follower = FlagsFollower(control.address, guard="order@honest")
    await follower.start()
    await follower.wait_ready(timeout=5)

    async def acknowledge_each_version() -> None:
        async for view in follower.changes():
            await follower.acknowledge(view.version)

    acker = asyncio.create_task(acknowledge_each_version())
    try:
        reply = await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill",
                                                                          cancel_open_orders=False))
        assert list(reply.enforced_by) == ["order@honest"] and list(reply.not_enforced_by) == ["order@silent"]
        assert not reply.snapshot.lock_cancels_open_orders
        silent.cancel()  # a guard that went away is no longer waited for
        await asyncio.sleep(0)
        reply = await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
            slug="ma_cross", entry_enabled=False, reason="drill", create_if_missing=True))
        assert list(reply.enforced_by) == ["order@honest"] and list(reply.not_enforced_by) == []
    finally:
        acker.cancel()
        await follower.stop()


async def test_an_acknowledgement_must_name_a_version_that_exists(control):
    with pytest.raises(grpc.aio.AioRpcError) as ahead:
        await control.stub.AckFlags(pb.AckFlagsRequest(guard="order@x", version=10_000))
    assert ahead.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "ahead" in ahead.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as nameless:
        await control.stub.AckFlags(pb.AckFlagsRequest(version=1))
    assert nameless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
