"""The workers the console asks (services/console/workers.py): a name behind a headless Service
stands for every pod it resolves to, each dialed by IP under the Service's name."""

from __future__ import annotations

from quantmesh.common.v1 import common_pb2
from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.auth import TokenTable
from services.common.server import GrpcHost, binding
from services.console.workers import Workers


class EntryWorker(strategy_pb2_grpc.StrategyServicer):
    async def GetStatus(self, request, context):
        return strategy_pb2.GetStatusResponse(slug="ma_cross", role=common_pb2.STRATEGY_ROLE_ENTRY,
                                              state=strategy_pb2.WORKER_STATE_RUNNING)


async def test_each_worker_says_what_it_runs_and_a_silent_one_is_down():
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable(), policy={},
                    bindings=[binding(strategy_pb2, "Strategy", strategy_pb2_grpc.add_StrategyServicer_to_server,
                                      EntryWorker())])
    await host.start()
    dialed = []

    def reach(address, server_name=None):
        dialed.append((address, server_name))
        return address

    workers = Workers((f"workers.example:{host.port}", "127.0.0.1:1"), token=None, reach=reach, timeout_seconds=2,
                      resolve=lambda name: ["127.0.0.1", "127.0.0.1"])
    try:
        reports = {r.address: r for r in await workers.reports()}
    finally:
        await workers.close()
        await host.stop()
    assert reports[f"127.0.0.1:{host.port}"].status.slug == "ma_cross"
    assert reports["127.0.0.1:1"].status is None and "UNAVAILABLE" in reports["127.0.0.1:1"].problem
    assert dialed == [(f"127.0.0.1:{host.port}", "workers.example"), ("127.0.0.1:1", None)]


async def test_a_name_that_does_not_resolve_is_reported_under_its_own_name():
    def unknown(name):
        raise OSError("no such host")

    workers = Workers(("strategy-workers:50060",), token=None, resolve=unknown, timeout_seconds=0.5)
    try:
        [report] = await workers.reports()
    finally:
        await workers.close()
    assert report.address == "strategy-workers:50060" and report.status is None
