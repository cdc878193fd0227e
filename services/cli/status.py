"""`quantmesh status`: each plane's health and each worker's GetStatus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.auth import bearer_metadata
from services.common.config import DEFAULT_PORTS


def add_status_parser(sub) -> None:
    parser = sub.add_parser("status", help="health of every plane and each worker's last decision")
    parser.add_argument("--data-dir", default=".quantmesh", help="where `quantmesh up` wrote mesh.json")
    parser.add_argument("--token", default=None, help="bearer token (default: $QUANTMESH_TOKEN)")


async def _health(address: str, metadata) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2,
                                                                   metadata=metadata)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            return f"DOWN ({exc.code().name})"


async def _worker(address: str, metadata):
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            return await strategy_pb2_grpc.StrategyStub(channel).GetStatus(strategy_pb2.GetStatusRequest(),
                                                                          timeout=2, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            return f"DOWN ({exc.code().name})"


async def run_status(args) -> int:
    mesh_file = Path(args.data_dir) / "mesh.json"
    mesh = json.loads(mesh_file.read_text()) if mesh_file.exists() else {
        "planes": {p: f"127.0.0.1:{port}" for p, port in DEFAULT_PORTS.items()}, "workers": {}}
    metadata = bearer_metadata(args.token or os.environ.get("QUANTMESH_TOKEN"))
    down = 0
    print(f"{'plane':<14} {'address':<18} health")
    for plane, address in mesh["planes"].items():
        health = await _health(address, metadata)
        down += health != "SERVING"
        print(f"{plane:<14} {address:<18} {health}")
    if mesh["workers"]:
        print(f"\n{'worker':<28} {'state':<12} {'events':>7} {'sent':>5} {'refused':>7} {'errors':>6}  last decision")
    for name, address in mesh["workers"].items():
        status = await _worker(address, metadata)
        if isinstance(status, str):
            down += 1
            print(f"{name:<28} {status}")
            continue
        state = strategy_pb2.WorkerState.Name(status.state).removeprefix("WORKER_STATE_")
        last = status.last_decision
        decision = f"{last.action}: {last.reason}" if last.action else "-"
        print(f"{name:<28} {state:<12} {status.events:>7} {status.intents_submitted:>5} {status.intents_rejected:>7} "
              f"{status.strategy_errors:>6}  {decision[:70]}")
    return 1 if down else 0
