"""The real `python -m services.control` process: durability across restarts, followers across a kill -9."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quantmesh.control.v1 import control_pb2 as pb
from quantmesh.control.v1 import control_pb2_grpc
from services.common.flags import FlagsFollower
from tests.support.ports import free_port
from services.common.db import create_database
from tests.support.processes import PlaneProcess


def control_env(database_url: str, address: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_HEARTBEAT_SECONDS": "0.2",
            "QUANTMESH_TOKENS": "", "QUANTMESH_GRACE_SECONDS": "1"}


async def started(database_url: str, address: str, log_dir) -> PlaneProcess:
    plane = PlaneProcess("services.control", control_env(database_url, address), log_dir).start()
    await asyncio.to_thread(plane.wait_healthy, address)
    return plane


async def get_flags(address: str) -> pb.FlagSnapshot:
    async with grpc.aio.insecure_channel(address) as channel:
        return (await control_pb2_grpc.ControlStub(channel).GetFlags(pb.GetFlagsRequest(), timeout=10)).snapshot


async def eventually(predicate, what: str, timeout: float = 30.0) -> None:
    """Polls `predicate` until it holds; the timeout is only a guard against hanging."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"not reached within {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def test_a_lock_and_the_version_survive_a_restart(postgres_admin_url, tmp_path):
    url = await create_database(postgres_admin_url, prefix="control")
    address = f"127.0.0.1:{free_port()}"
    plane = await started(url, address, tmp_path)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            await stub.SetStrategyFlags(pb.SetStrategyFlagsRequest(slug="ma_cross", entry_enabled=False,
                                                                   note="review", create_if_missing=True))
            locked = (await stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=True, reason="restart drill"))).snapshot
        assert locked.global_lock and locked.version == 3
        assert plane.terminate() == 0  # graceful, even with no watcher attached
    finally:
        plane.kill()
    plane = await started(url, address, tmp_path)
    try:
        after = await get_flags(address)
        assert after.global_lock and after.state == pb.TRADING_STATE_HALTED
        assert after.version == locked.version
        assert [(s.slug, s.entry_enabled, s.note) for s in after.strategies] == [("ma_cross", False, "review")]
        async with grpc.aio.insecure_channel(address) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            unlocked = (await stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=False, reason="drill over"))).snapshot
            assert unlocked.version == locked.version + 1  # the version never goes back
            audit = (await stub.ListAudit(pb.ListAuditRequest(flag="global_lock"))).entries
            assert [(e.reason, e.version) for e in audit] == [("drill over", 4), ("restart drill", 3)]
        # a watcher attached while SIGTERM arrives does not hold the shutdown
        async with grpc.aio.insecure_channel(address) as channel:
            call = control_pb2_grpc.ControlStub(channel).WatchFlags(pb.WatchFlagsRequest())
            assert (await call.read()).snapshot.version == 4
            assert await asyncio.to_thread(plane.terminate) == 0
    finally:
        plane.kill()


async def test_follower_fails_closed_when_control_is_killed_and_recovers_on_restart(postgres_admin_url, tmp_path):
    url = await create_database(postgres_admin_url, prefix="control")
    address = f"127.0.0.1:{free_port()}"
    plane = await started(url, address, tmp_path)
    follower = FlagsFollower(address, staleness_seconds=1.0)
    await follower.start()
    try:
        view = await follower.wait_ready(30)
        assert view.version == 1
        assert follower.can_enter("ma_cross") and follower.can_exit("ma_cross") and not follower.is_stale()

        plane.kill()  # SIGKILL: no goodbye, no end of stream
        await eventually(lambda: not follower.can_enter("ma_cross"), "entries refused after the kill")
        verdict = follower.verdict("ma_cross", "entry", False)
        assert (verdict.allowed, verdict.rule) == (False, "guard.control_stale")
        assert follower.is_stale()
        assert follower.can_exit("ma_cross")  # exits follow the last snapshot: a stop-loss is not held

        plane = await started(url, address, tmp_path)  # same data, new process, same port
        await eventually(lambda: follower.can_enter("ma_cross"), "entries allowed again after the restart")
        assert not follower.is_stale()
        async with grpc.aio.insecure_channel(address) as channel:
            await control_pb2_grpc.ControlStub(channel).SetGlobalFlags(
                pb.SetGlobalFlagsRequest(global_lock=True, reason="after restart"))
        await eventually(lambda: follower.verdict("ma_cross", "exit", True).rule == "guard.halted",
                         "the lock reaches the follower through the new process")
        assert follower.view().version == 2
    finally:
        await follower.stop()
        plane.kill()
