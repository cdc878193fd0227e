"""Every grpcurl line of the README and docs/, run as a user pastes it (bash, the real grpcurl 1.8.6)
against a live mesh, in the order the docs give them, and each answer checked.

- The plain lines run against a mesh like `quantmesh up`'s (synthetic feed at 60x, ma_cross's ENTRY
  and EXIT workers), on free ports: each line's 127.0.0.1:5005N / :50060 is rewritten to where that
  plane or worker listens here.
- The `-H "authorization: Bearer $TOKEN"` lines of docs/control.md run against a control plane with
  QUANTMESH_TOKENS configured, TOKEN set to its operator token (and the same call without the token
  is refused, so the tokens are really on).
- docs/planes.md's PublishTicks runs against a market_data plane fed by push, the only kind that takes it.
- docs/deploy.md's lines go to a kind cluster through `kubectl port-forward` with the cluster's CA and
  token, which this machine does not have (no Docker engine, no cluster): they are checked for form only
  (tests/unit/test_docs_grpcurl.py parses each payload as its request), and the same calls over TLS and
  mutual TLS with the real grpcurl run in tests/integration/test_tls.py.

A line that no expectation below describes fails: a new doc line needs its expected answer here.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass

import grpc
import pytest

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.db import create_database
from tests.support.grpcurl import DocLine, doc_grpcurl_lines, grpcurl_binary
from tests.support.mesh import Mesh, StrategyPair
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

pytestmark = pytest.mark.e2e

OPERATOR_TOKEN = "docs-operator-token"
DOC_PORTS = {"50051": "market_data", "50052": "control", "50053": "order", "50054": "position"}
ANALYSIS_PORT = "50056"  # the analysis plane runs beside the mesh, as `quantmesh up` runs it
STREAMS = ("/StreamCandles", "/WatchFlags", "/WatchStrategySettings")  # they never end: read for a few seconds, then check what came


@dataclass(frozen=True)
class Expect:
    """What the answer to a line that matches `pattern` must hold: each of `says` in its output (stdout
    for an answer, stderr for a refusal with `code`, grpcurl's name for the status)."""

    pattern: str
    says: tuple[str, ...] = ()
    code: str | None = None


EXPECTED = [
    # The analysis plane (docs/analysis.md), in doc order: ma_cross's workers have recorded signals by then,
    # but a young run may have no entry, refusal, closed trade or pattern yet (an empty answer is right).
    Expect(r"describe quantmesh\.analysis\.v1\.Analysis$",
           ("quantmesh.analysis.v1.Analysis is a service", "rpc WatchStrategySettings")),
    Expect(r'"actions": \[.*Analysis/ListSignals$', ()),
    Expect(r'"client_order_id": .*Analysis/ListSignals$', ()),
    Expect(r"Analysis/ListSignals$", ('"signals": [', '"strategySlug": "ma_cross"', '"traceId": "')),
    Expect(r"Analysis/GetPerformance$", ()),
    Expect(r"Analysis/GetRangeMetrics$", ('"metrics": [', '"instrument": "USD_JPY"', '"atrPeriod": 14')),
    Expect(r"Analysis/GetPatternBook$", ()),
    Expect(r"Analysis/GetAllocations$", ('"policy": "',)),
    Expect(r"Analysis/GetStrategySettings$", ('"strategySlug": "ma_cross"', '"allocation": {')),
    Expect(r'"fast_period": "80".*Analysis/SetStrategyParams$', ("between 2 and 50",), code="InvalidArgument"),
    Expect(r'"fast_period": "5".*Analysis/SetStrategyParams$',
           ('"fast_period": "5"', '"paramsVersion": "1"', '"reason": "slower fast average"')),
    Expect(r'"reset": \["fast_period"\].*Analysis/SetStrategyParams$',
           ('"version": "2"', '"reason": "back to the start value"')),
    Expect(r'"frozen": true.*Analysis/FreezeStrategy$', ('"frozen": true', '"reason": "earnings week"')),
    Expect(r'"frozen": false.*Analysis/FreezeStrategy$', ('"reason": "back to normal"',)),
    Expect(r"Analysis/WatchStrategySettings$", ('"seq": "1"', '"strategySlug": "ma_cross"')),
    Expect(r"Analysis/RecordSignals$", ('"recorded": 1',)),
    Expect(r" list$", ("quantmesh.order.v1.Order", "grpc.health.v1.Health", "grpc.reflection.v1alpha")),
    Expect(r"describe quantmesh\.order\.v1\.Order\.Submit$",
           ("quantmesh.order.v1.Order.Submit is a method", "rpc Submit ( .quantmesh.order.v1.SubmitRequest )")),
    Expect(r"grpc\.health\.v1\.Health/Check$", ('"status": "SERVING"',)),
    Expect(r"Control/GetFlags$", ('"snapshot": {', '"version": "')),
    Expect(r'"expected_version": 7\}', ("Code: Aborted", "version 7"), code="Aborted"),
    Expect(r'"global_lock": true, "cancel_open_orders": false', ('"globalLock": true', "TRADING_STATE_HALTED")),
    Expect(r'"global_lock": true', ('"globalLock": true', '"state": "TRADING_STATE_HALTED"')),
    Expect(r'"global_lock": false', ('"state": "TRADING_STATE_ACTIVE"',)),
    Expect(r'"global_entry_enabled": false', ('"state": "TRADING_STATE_REDUCING"',)),
    Expect(r'"global_entry_enabled": true', ('"state": "TRADING_STATE_ACTIVE"',)),
    Expect(r'"global_exit_enabled": false', ('"snapshot": {', '"globalEntryEnabled": true')),
    Expect(r'"global_exit_enabled": true', ('"globalExitEnabled": true',)),
    Expect(r'"entry_enabled": false, "note": "under review"', ('"slug": "ma_cross"', '"note": "under review"')),
    Expect(r'"slug": "ma_cross", "entry_enabled": false', ('"slug": "ma_cross"',)),
    Expect(r'"slug": "ma_cross", "entry_enabled": true', ('"slug": "ma_cross"', '"entryEnabled": true')),
    Expect(r"Control/WatchFlags$", ('"snapshot": {', '"seq": "')),
    Expect(r'"since": "2025-01-01T00:00:00Z"', ()),  # a window before this run: an empty answer is right
    Expect(r'"page_token": "before:120"', ()),
    # Filters whose findings depend on what the planes' outboxes have delivered by then: an answer, maybe empty.
    Expect(r'"plane": "order"', ()),
    Expect(r'"plane": "analysis"', ()),
    Expect(r'"event": "reconciliation"', ()),
    Expect(r"Control/ListAudit$", ('"entries": [', '"event": "flag_change"')),
    Expect(r"MarketData/GetCandles$", ('"candles": [', '"timeframe": "TIMEFRAME_M1"', '"mid": {')),
    Expect(r"MarketData/StreamCandles$", ('"candle": {', '"instrument": "USD_JPY"')),
    Expect(r"MarketData/PublishTicks$", ('"accepted": "2"', '"lastTickSeq": "2"')),
    Expect(r'"client_order_id": "manual-1".*Order/Submit$',
           ('"clientOrderId": "manual-1"', '"quantity": "10000"', '"state": "ORDER_STATE_')),
    Expect(r'"client_order_id": "protected-1".*Order/Submit$',
           ('"clientOrderId": "protected-1"', '"stopLossDistance": "0.30"', '"trailingStopDistance": "0.20"',
            '"state": "ORDER_STATE_')),
    Expect(r"Order/SubmitStream$", ('"clientOrderId": "stream-1"', '"status": "OK"', '"clientOrderId": "stream-2"',
                                     '"status": "INVALID_ARGUMENT"', "quantity")),
    # Money as the contracts carry it: "10000", never "1E+4" (Submit's answer and GetOrder's agree).
    Expect(r"Order/GetOrder$", ('"clientOrderId": "manual-1"', '"quantity": "10000"', '"createdTime": "')),
    Expect(r"Order/ListOrders$", ('"orders": [', '"clientOrderId": "manual-1"')),
    # The paper venue reports no financing: an empty list, answered (not refused).
    Expect(r'"after_seq": 0.*Order/ListFinancing$', ("{",)),
    Expect(r"Order/CancelOpen$", ()),
    Expect(r"Order/Flatten$", ()),
    Expect(r'"apply_adjustments": true.*Position/Reconcile$', ()),
    Expect(r"Position/Reconcile$", ()),
    Expect(r"Position/Snapshot$", ('"account": {', '"currency": "JPY"', '"strategySlug": "manual"')),
    Expect(r"Strategy/GetStatus$", ('"slug": "ma_cross"', '"state": "WORKER_STATE_RUNNING"')),
]


def expectation(line: DocLine) -> Expect:
    for expect in EXPECTED:
        if re.search(expect.pattern, line.text):
            return expect
    raise AssertionError(f"{line}: no expected answer for this line; add one to EXPECTED: {line.text}")


def where(line: DocLine) -> str:
    """Which running process answers the line: "mesh", "tokens", "push" or "kind" (not run here)."""
    if line.doc == "deploy.md":
        return "kind"
    if "$TOKEN" in line.text:
        return "tokens"
    return "push" if line.target.endswith("/PublishTicks") else "mesh"


LINES = list(doc_grpcurl_lines())


@pytest.fixture(scope="module")
async def planes(postgres_admin_url, tmp_path_factory):
    """The mesh, a control plane with tokens and a market_data plane fed by push, with their addresses."""
    logs = tmp_path_factory.mktemp("docs-grpcurl")
    mesh = Mesh(database_url=await create_database(postgres_admin_url, prefix="qm_docs"), log_dir=logs / "mesh",
                feed="synthetic", speed="60x", strategies=[StrategyPair(slug="ma_cross")], analysis=True,
                plane_env={"market_data": {"QUANTMESH_SKIP_CLOSURES": "true"}})
    analysis_address = mesh.address("analysis")
    side = await create_database(postgres_admin_url, prefix="qm_docs_side")  # control and market_data schemas
    token_control, push = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    others = [
        (PlaneProcess("services.control", {"DATABASE_URL": side, "QUANTMESH_LISTEN": token_control,
                                           "QUANTMESH_TOKENS": f"{OPERATOR_TOKEN}=docs-operator:operator"},
                      logs / "tokens"), token_control),
        (PlaneProcess("services.market_data", {"DATABASE_URL": side, "QUANTMESH_LISTEN": push,
                                               "QUANTMESH_FEED": "push", "QUANTMESH_INSTRUMENTS": "USD_JPY"},
                      logs / "push"), push),
    ]
    try:
        await asyncio.to_thread(mesh.start)  # analysis before the workers, which follow it
        for process, address in others:
            process.start()
        for process, address in others:
            await asyncio.to_thread(process.wait_healthy, address)
        await _candles_closed(mesh.address("market_data"))
        await _signals_recorded(analysis_address)
        yield {"mesh": {**{port: mesh.address(plane) for port, plane in DOC_PORTS.items()},
                        ANALYSIS_PORT: analysis_address, "50060": mesh.worker_address("ma_cross", "entry")},
               "tokens": {"50052": token_control}, "push": {"50051": push}}
    finally:
        for process, _ in others:
            await asyncio.to_thread(process.terminate)
        await asyncio.to_thread(mesh.stop)


async def _candles_closed(address: str, count: int = 3, timeout: float = 90) -> None:
    """The README's GetCandles asks for the latest three M1 candles: wait until there are."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = market_data_pb2_grpc.MarketDataStub(channel)
        for _ in range(int(timeout * 2)):
            try:
                page = await stub.GetCandles(market_data_pb2.GetCandlesRequest(
                    instrument="USD_JPY", timeframe=common_pb2.TIMEFRAME_M1, limit=count, latest=True))
                if len(page.candles) >= count:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"no {count} M1 candles from {address} after {timeout} s")


async def _signals_recorded(address: str, timeout: float = 90) -> None:
    """The analysis lines read ma_cross's signals: wait until its workers have recorded some."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = analysis_pb2_grpc.AnalysisStub(channel)
        for _ in range(int(timeout * 2)):
            try:
                if (await stub.ListSignals(analysis_pb2.ListSignalsRequest(strategy_slug="ma_cross", limit=1))).signals:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"no signals of ma_cross at {address} after {timeout} s")


def run_as_pasted(line: DocLine, ports: dict[str, str]) -> subprocess.CompletedProcess:
    text = line.text
    for port, address in ports.items():
        text = text.replace(f"127.0.0.1:{port}", address)
    stream = line.target.endswith(STREAMS)
    text = text.replace("grpcurl ", f"grpcurl -max-time {4 if stream else 15} ", 1)
    env = {**os.environ, "PATH": f"{grpcurl_binary().parent}:{os.environ['PATH']}", "TOKEN": OPERATOR_TOKEN}
    return subprocess.run(["bash", "-c", text], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("line", [pytest.param(line, id=str(line)) for line in LINES])
async def test_the_line_answers_as_the_docs_say(planes, line):
    expect, place = expectation(line), where(line)
    if place == "kind":
        assert "-cacert " in line.text and "-plaintext" not in line.text
        pytest.skip("a line for TLS planes with the kind cluster's or `./qm certs`' CA: checked for form; "
                    "tests/integration/test_tls.py runs grpcurl over TLS and mutual TLS")
    done = await asyncio.to_thread(run_as_pasted, line, planes[place])
    said = done.stdout + done.stderr
    if line.target.endswith(STREAMS):
        assert done.stdout.strip(), f"{line}: the stream sent nothing in 4 s: {said}"
    elif expect.code is not None:
        assert done.returncode != 0 and f"Code: {expect.code}" in done.stderr, f"{line}: {said}"
    else:
        assert done.returncode == 0, f"{line} failed: {said}"
    missing = [text for text in expect.says if text not in (done.stderr if expect.code else done.stdout)]
    assert not missing, f"{line}: the answer lacks {missing}:\n{said}"
    assert "E+" not in done.stdout, f"{line}: a number with an exponent:\n{done.stdout}"
    print(f"{line}\n{done.stdout[:600]}")  # shown with -s: what each line answered


async def test_the_token_lines_need_the_token(planes):
    refused = await asyncio.to_thread(subprocess.run, [
        str(grpcurl_binary()), "-plaintext", "-d", "{}", planes["tokens"]["50052"],
        "quantmesh.control.v1.Control/GetFlags"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr
