"""`quantmesh status`: each plane's health and each worker's GetStatus; `--watch` redraws it, `--follow`
prints the mesh's tape (orders placed, filled, refused; flag changes) as `quantmesh up` does.

The addresses come from <data-dir>/mesh.json, which `quantmesh up` writes; without it, the default
ports. Channels are dialed as the planes dial each other (TLS when configured, QUANTMESH_TOKEN).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.cli.dial import Dialer
from services.cli.planes import PLANES
from services.cli.tape import Tape
from services.common.config import DEFAULT_PORTS, ConfigError, Env
from services.common.channels import PlaintextTokenRefused


def add_status_parser(sub) -> None:
    parser = sub.add_parser("status", help="health of every plane and each worker's last decision "
                                           "(--watch to keep it on screen, --follow for orders, fills and flags)",
                            description=__doc__)
    parser.add_argument("--data-dir", default=".quantmesh", help="where `quantmesh up` wrote mesh.json")
    parser.add_argument("--token", default=None, help="bearer token (default: $QUANTMESH_TOKEN)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                      help="redraw the status every SECONDS (default 2) until Ctrl-C")
    what.add_argument("--follow", action="store_true",
                      help="print one line per order placed, filled, refused or canceled and per flag change, "
                           "until Ctrl-C")


async def _health(channel: grpc.aio.Channel) -> str:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as exc:
        return f"DOWN ({exc.code().name})"


async def _worker(channel: grpc.aio.Channel):
    try:
        return await strategy_pb2_grpc.StrategyStub(channel).GetStatus(strategy_pb2.GetStatusRequest(), timeout=2)
    except grpc.aio.AioRpcError as exc:
        return f"DOWN ({exc.code().name})"


def read_mesh(data_dir: Path) -> dict:
    mesh_file = data_dir / "mesh.json"
    if mesh_file.exists():
        return json.loads(mesh_file.read_text())
    return {"planes": {p: f"127.0.0.1:{DEFAULT_PORTS[p]}" for p in PLANES}, "workers": {}}


async def status_report(mesh: dict, dialer: Dialer) -> tuple[str, int]:
    """The status table and how many planes and workers do not answer."""
    down, lines = 0, [f"{'plane':<14} {'address':<18} health"]
    for plane, address in mesh["planes"].items():
        async with dialer.channel(address) as channel:
            health = await _health(channel)
        down += health != "SERVING"
        lines.append(f"{plane:<14} {address:<18} {health}")
    if mesh["workers"]:
        lines += ["", f"{'worker':<28} {'state':<12} {'events':>7} {'sent':>5} {'refused':>7} {'errors':>6}  "
                      "last decision"]
    for name, address in mesh["workers"].items():
        async with dialer.channel(address) as channel:
            status = await _worker(channel)
        if isinstance(status, str):
            down += 1
            lines.append(f"{name:<28} {status}")
            continue
        state = strategy_pb2.WorkerState.Name(status.state).removeprefix("WORKER_STATE_")
        last = status.last_decision
        decision = f"{last.action}: {last.reason}" if last.action else "-"
        lines.append(f"{name:<28} {state:<12} {status.events:>7} {status.intents_submitted:>5} "
                     f"{status.intents_rejected:>7} {status.strategy_errors:>6}  {decision[:70]}")
    return "\n".join(lines), down


async def run_status(args) -> int:
    try:
        dialer = Dialer.from_env(Env(), token=args.token)
    except ConfigError as exc:
        print(f"quantmesh status: {exc}", file=sys.stderr)
        return 2
    mesh = read_mesh(Path(args.data_dir))
    try:
        if args.follow:
            return await _until_ctrl_c(_follow(mesh, dialer))
        if args.watch is not None:
            return await _until_ctrl_c(_watch(mesh, dialer, max(args.watch, 0.2)))
        report, down = await status_report(mesh, dialer)
    except PlaintextTokenRefused as exc:
        print(f"quantmesh status: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 1 if down else 0


async def _watch(mesh: dict, dialer: Dialer, seconds: float) -> None:
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    while True:
        report, down = await status_report(mesh, dialer)
        stamp = f"{datetime.now():%H:%M:%S}  {'all serving' if not down else f'{down} not answering'}  " \
                f"(every {seconds:g} s; Ctrl-C to stop)"
        print(f"{clear}{stamp}\n{report}\n", flush=True)
        await asyncio.sleep(seconds)


async def _follow(mesh: dict, dialer: Dialer) -> None:
    planes = mesh["planes"]
    print(f"following the mesh's orders, fills and flags ({planes['order']}, {planes['control']}); Ctrl-C to stop",
          flush=True)
    quiet = logging.getLogger("quantmesh.status.tape")
    quiet.setLevel(logging.ERROR)  # a plane restarting is retried without a warning per attempt
    async with dialer.channel(planes["order"]) as order, dialer.channel(planes["control"]) as control:
        await Tape(order=order, control=control, say=lambda line: print(line, flush=True), log=quiet).run()


async def _until_ctrl_c(work) -> int:
    """Runs `work` until SIGINT or SIGTERM; a Ctrl-C ends it quietly with exit code 0."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
