"""The analysis plane as a real process (with a real control plane for its audit trail).

Signals go in through the workers' own outbox and come back through ListSignals and the
table; the settings stream pushes every change at once; every change reaches control's audit
trail; a restart keeps the settings and their versions.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import grpc
import pytest

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.strategy_settings import SettingsFollower
from services.strategies.signals import SignalOutbox
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

T0 = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)


class Planes:
    def __init__(self, database_url: str, log_dir) -> None:
        self.control = f"127.0.0.1:{free_port()}"
        self.analysis = f"127.0.0.1:{free_port()}"
        self.database_url = database_url
        self.log_dir = log_dir
        self.env = {"DATABASE_URL": database_url, "QUANTMESH_CONTROL_ADDR": self.control,
                    # Nobody listens there: the followers of fills and candles just keep retrying.
                    "QUANTMESH_ORDER_ADDR": f"127.0.0.1:{free_port()}",
                    "QUANTMESH_MARKET_DATA_ADDR": f"127.0.0.1:{free_port()}",
                    "QUANTMESH_DATA_DIR": str(log_dir / "data"), "QUANTMESH_GRACE_SECONDS": "1"}
        self.processes: list[PlaneProcess] = []

    def start(self, module: str, address: str) -> PlaneProcess:
        process = PlaneProcess(module, {**self.env, "QUANTMESH_LISTEN": address}, self.log_dir).start()
        process.wait_healthy(address)
        self.processes.append(process)
        return process


@pytest.fixture(scope="module")
def planes(database_url, tmp_path_factory):
    running = Planes(database_url, tmp_path_factory.mktemp("analysis-plane"))
    try:
        running.start("services.control", running.control)
        running.start("services.analysis", running.analysis)
        yield running
    finally:
        for process in reversed(running.processes):
            process.terminate()


def signal(n: int, **fields) -> analysis_pb2.Signal:
    message = analysis_pb2.Signal(
        signal_id=f"probe.e.USD_JPY.{n}.0", strategy_slug="probe", role=1, instrument="USD_JPY",
        action=analysis_pb2.SIGNAL_ACTION_HOLD, reason="no entry signal", params_version=0, allocation_version=0,
        size_multiplier="1", price_ref=150.0, indicators={"sma_fast": 150.1}, **fields)
    message.decision_time.FromDatetime(T0 + timedelta(minutes=n))
    return message


async def test_signals_from_the_workers_outbox_are_stored_once_and_listed(planes):
    outbox = SignalOutbox(planes.analysis, linger_seconds=0.05)
    await outbox.start()
    try:
        for n in range(30):
            outbox.put(signal(n))
        outbox.put(signal(3))  # a decision recorded twice (a retry after a lost answer)
        deadline = asyncio.get_running_loop().time() + 20
        while outbox.waiting and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert outbox.sent == 31 and outbox.waiting == 0
    finally:
        await outbox.stop()
    async with grpc.aio.insecure_channel(planes.analysis) as channel:
        stub = analysis_pb2_grpc.AnalysisStub(channel)
        first = await stub.ListSignals(analysis_pb2.ListSignalsRequest(strategy_slug="probe", limit=20))
        rest = await stub.ListSignals(analysis_pb2.ListSignalsRequest(strategy_slug="probe", limit=20,
                                                                      page_token=first.next_page_token))
        listed = [*first.signals, *rest.signals]
        assert len(listed) == 30 and not rest.next_page_token
        assert [s.signal_id for s in listed] == [f"probe.e.USD_JPY.{n}.0" for n in reversed(range(30))]
        assert listed[0].indicators["sma_fast"] == 150.1 and listed[0].seq > listed[-1].seq
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.RecordSignals(analysis_pb2.RecordSignalsRequest(signals=[signal(99, confidence=1.5)]))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "signals[0].confidence 1.5 is outside 0 to 1" in bad.value.details()
    conn = await asyncpg.connect(planes.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM analysis.signals WHERE strategy_slug = 'probe'") == 30
    finally:
        await conn.close()


async def wait_until(probe, what: str, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await probe()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return found


async def test_settings_stream_at_once_survive_a_restart_and_reach_the_audit_trail(planes):
    follower = SettingsFollower(planes.analysis, "bollinger_touch", start_params={"period": "20"},
                                max_backoff_seconds=0.5)
    following = asyncio.create_task(follower.run())
    try:
        first = await follower.wait_ready(10)
        assert first.version == 0 and not first.params and first.allocation.entries_enabled
        async with grpc.aio.insecure_channel(planes.analysis) as channel:
            stub = analysis_pb2_grpc.AnalysisStub(channel)
            changed = (await stub.SetStrategyParams(analysis_pb2.SetStrategyParamsRequest(
                strategy_slug="bollinger_touch", params={"deviations": "2.5"}, reason="wider bands"))).settings
            frozen = (await stub.FreezeStrategy(analysis_pb2.FreezeStrategyRequest(
                strategy_slug="bollinger_touch", frozen=True, reason="hold still"))).settings
        assert (changed.version, changed.params_version, dict(changed.params)) == (1, 1, {"deviations": "2.5"})
        assert frozen.version == 2 and frozen.frozen
        await wait_until(lambda: _at(follower, 2), "the follower to see version 2")
        # A restart: the same settings and versions from the schema; the follower reconnects by itself.
        analysis = next(p for p in planes.processes if p.module == "services.analysis")
        assert analysis.terminate() == 0
        planes.processes.remove(analysis)
        planes.start("services.analysis", planes.analysis)
        async with grpc.aio.insecure_channel(planes.analysis) as channel:
            stub = analysis_pb2_grpc.AnalysisStub(channel)
            (kept,) = (await stub.GetStrategySettings(analysis_pb2.GetStrategySettingsRequest(
                strategy_slug="bollinger_touch"))).settings
            assert kept == frozen
            thawed = (await stub.FreezeStrategy(analysis_pb2.FreezeStrategyRequest(
                strategy_slug="bollinger_touch", frozen=False, reason="go on"))).settings
        assert thawed.version == 3
        latest = await wait_until(lambda: _at(follower, 3), "the follower to see version 3 after the restart")
        assert dict(latest.params) == {"deviations": "2.5"} and not latest.frozen
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
    async with grpc.aio.insecure_channel(planes.control) as channel:
        control = control_pb2_grpc.ControlStub(channel)

        async def audited():
            reply = await control.ListAudit(control_pb2.ListAuditRequest(plane="analysis", slug="bollinger_touch"))
            return reply.entries if len(reply.entries) == 3 else None
        entries = await wait_until(audited, "three audit records at control")
    assert [(e.event, e.reason, e.subject) for e in reversed(entries)] == [
        ("params_change", "wider bands", "settings v1"), ("strategy_freeze", "hold still", "settings v2"),
        ("strategy_unfreeze", "go on", "settings v3")]
    assert entries[-1].old_value == "{}" and entries[-1].new_value == '{"deviations": "2.5"}'


async def _at(follower: SettingsFollower, version: int):
    latest = follower.latest()
    return latest if latest is not None and latest.version == version else None


async def test_old_hold_and_skip_signals_are_pruned_at_start_and_decisions_stay(planes):
    """Signals recorded 31 days ago and today, of every action: a restart (which prunes at once, then
    hourly) leaves every entry, exit and refusal and today's holds and skips, and no old hold or skip."""
    actions = {"hold": analysis_pb2.SIGNAL_ACTION_HOLD, "skip": analysis_pb2.SIGNAL_ACTION_SKIP,
               "entry": analysis_pb2.SIGNAL_ACTION_ENTRY, "exit": analysis_pb2.SIGNAL_ACTION_EXIT,
               "refused": analysis_pb2.SIGNAL_ACTION_REFUSED}
    signals = []
    for age in ("old", "new"):
        for n, (name, action) in enumerate(actions.items()):
            message = signal(1000 + n)
            message.signal_id, message.strategy_slug, message.action = f"retention.{age}.{name}", "retention", action
            if name in ("entry", "exit", "refused"):
                message.client_order_id, message.side, message.quantity = f"retention-{age}-{name}", 1, "1000"
            signals.append(message)
    async with grpc.aio.insecure_channel(planes.analysis) as channel:
        reply = await analysis_pb2_grpc.AnalysisStub(channel).RecordSignals(
            analysis_pb2.RecordSignalsRequest(signals=signals))
    assert reply.recorded == len(signals)
    conn = await asyncpg.connect(planes.database_url)
    try:
        await conn.execute("UPDATE analysis.signals SET recorded_time = now() - interval '31 days' "
                           "WHERE signal_id LIKE 'retention.old.%'")
        analysis = next(p for p in planes.processes if p.module == "services.analysis")
        assert analysis.terminate() == 0
        planes.processes.remove(analysis)
        planes.start("services.analysis", planes.analysis)

        async def kept():
            rows = await conn.fetch("SELECT signal_id FROM analysis.signals WHERE strategy_slug = 'retention'")
            return sorted(r["signal_id"] for r in rows)

        deadline = asyncio.get_running_loop().time() + 20
        while "retention.old.hold" in await kept() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
        assert await kept() == sorted(
            ["retention.old.entry", "retention.old.exit", "retention.old.refused",
             *(f"retention.new.{name}" for name in actions)])
    finally:
        await conn.close()
