"""FlagsFollower against a real in-process control server: local answers, changes(), staleness."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from quantmesh.control.v1 import control_pb2 as pb
from services.common.clock import SimulatedClock
from services.common.flags import FlagsFollower
from tests.support.ports import free_port


async def test_no_snapshot_refuses_everything_and_wait_ready_times_out():
    follower = FlagsFollower(f"127.0.0.1:{free_port()}", staleness_seconds=1.0)  # nobody listens there
    await follower.start()
    try:
        with pytest.raises(TimeoutError):
            await follower.wait_ready(0.5)
        for role, reduces in (("entry", False), ("exit", True)):
            verdict = follower.verdict("ma_cross", role, reduces)
            assert (verdict.allowed, verdict.rule) == (False, "guard.no_snapshot")
        assert follower.view() is None and follower.is_stale()
    finally:
        await follower.stop()


async def test_changes_yields_every_new_view_and_verdicts_follow(control):
    async with FlagsFollower(control.address, staleness_seconds=5.0) as follower:
        await follower.wait_ready(30)
        views = follower.changes()
        assert (await anext(views)).version == 1  # the current view first
        await control.stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(
            slug="ma_cross", entry_enabled=False, create_if_missing=True, reason="review"))
        changed = await asyncio.wait_for(anext(views), 10)
        assert changed.version == 2 and not changed.strategies["ma_cross"].entry_enabled
        assert follower.verdict("ma_cross", "entry", False).rule == "guard.strategy_entry_disabled"
        assert follower.can_enter("other") and follower.can_exit("ma_cross")

        await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_entry_enabled=False))
        reducing = await asyncio.wait_for(anext(views), 10)
        assert reducing.state == "REDUCING"
        assert not follower.can_enter("other") and follower.can_exit("other")

        await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="drill"))
        halted = await asyncio.wait_for(anext(views), 10)
        assert halted.version == 4 and halted.state == "HALTED"
        assert not follower.can_exit("other")
        await views.aclose()


async def test_entries_fail_closed_when_the_stream_is_silent_past_the_staleness(control_factory):
    control = await control_factory(heartbeat_seconds=3600)  # no heartbeats during this test
    clock = SimulatedClock(datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc))
    async with FlagsFollower(control.address, staleness_seconds=5.0, clock=clock) as follower:
        await follower.wait_ready(30)
        assert follower.can_enter("ma_cross") and not follower.is_stale()
        clock.advance(4.9)
        assert follower.can_enter("ma_cross")
        clock.advance(0.2)
        assert follower.is_stale()
        verdict = follower.verdict("ma_cross", "entry", False)
        assert (verdict.allowed, verdict.rule) == (False, "guard.control_stale")
        assert "silent" in verdict.reason
        assert follower.can_exit("ma_cross")
        # a new snapshot counts as liveness again
        await control.stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_exit_enabled=False))
        for _ in range(200):
            if follower.view().version == 2:
                break
            await asyncio.sleep(0.05)
        assert not follower.is_stale() and follower.can_enter("ma_cross")
        assert follower.verdict("ma_cross", "exit", True).rule == "guard.exits_disabled"
