"""`quantmesh up`: the whole mesh on this machine, each plane its own process.

Order of start: control, market_data, order, position, then one ENTRY and one
EXIT worker per chosen strategy, then the operator's console (a web page, by
default on http://127.0.0.1:8470/); each waits for the planes it needs to answer
health first. Every process serves Prometheus metrics on loopback (9451 and up).
PostgreSQL is embedded (pgserver, under --data-dir) unless DATABASE_URL is set.
The mesh description (addresses, workers) is written to <data-dir>/mesh.json for
`quantmesh status`.

After the banner, one line per order placed, filled, refused or canceled and per
flag change (the tape; --quiet turns it off, `quantmesh status --follow` shows it
in another terminal). Ctrl-C stops the workers and the console, then the planes,
each group at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from services.cli.dial import Dialer
from services.cli.planes import (METRICS_PORTS, PLANES, WORKER_METRICS_BASE_PORT, analysis_spec, console_spec,
                                 mesh_env, plane_specs, with_metrics)
from services.cli.preflight import WRITER_SCHEMAS, held_writer_leases, refusal, taken_addresses
from services.cli.supervisor import ProcessSpec, Supervisor, dial_like_the_planes
from services.cli.tape import Tape
from services.common.config import DEFAULT_PORTS, ConfigError, Env
from services.common.embedded_pg import EmbeddedPostgres

log = logging.getLogger("quantmesh.up")

DEFAULT_STRATEGIES = ("ma_cross", "rsi_threshold", "bollinger_touch")
WORKER_BASE_PORT = 50060
CONSOLE_HEALTH = "127.0.0.1:50055"


def add_up_parser(sub) -> None:
    parser = sub.add_parser("up", help="run every plane locally (embedded PostgreSQL unless DATABASE_URL is set)",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replay", metavar="FILE", help="replay a tick file (CSV/Parquet: timestamp,bid,ask[,volume]) "
                        "instead of the synthetic feed; or BID.csv,ASK.csv for one-minute bid/ask bar files")
    parser.add_argument("--speed", default="60x", help="feed speed: realtime, Nx or max (default 60x: an hour of "
                        "market per minute, so M1 strategies trade within minutes)")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                        help=f"comma-separated strategy slugs (default {','.join(DEFAULT_STRATEGIES)}); "
                             "`python -m services.strategies --list` shows them all")
    parser.add_argument("--instrument", default="USD_JPY", help="instrument to feed and trade (default USD_JPY)")
    parser.add_argument("--data-dir", default=".quantmesh", help="where the embedded PostgreSQL and logs live")
    parser.add_argument("--for", dest="duration", type=float, default=0.0, metavar="SECONDS",
                        help="stop by itself after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--quiet", action="store_true",
                        help="no line per order, fill, refusal and flag change after the banner")
    parser.add_argument("--console", default="127.0.0.1:8470", metavar="HOST:PORT",
                        help="where the operator's console serves its page (default 127.0.0.1:8470; loopback "
                             "needs no sign-in, anything else needs QUANTMESH_CONSOLE_USERS, see docs/console.md)")


def _feed_env(args) -> dict[str, str]:
    # Nobody wants to sit through a weekend of a synthetic market or a recording at 60x:
    # market closures are skipped in wall time (the data keeps its gaps).
    if not args.replay:
        return {"QUANTMESH_FEED": "synthetic", "QUANTMESH_REPLAY_SPEED": args.speed, "QUANTMESH_SKIP_CLOSURES": "true"}
    if "," in args.replay:
        bid, ask = (str(Path(p).resolve()) for p in args.replay.split(",", 1))
        return {"QUANTMESH_FEED": f"bars:{bid},{ask}", "QUANTMESH_REPLAY_SPEED": args.speed,
                "QUANTMESH_SKIP_CLOSURES": "true"}
    return {"QUANTMESH_FEED": f"replay:{Path(args.replay).resolve()}", "QUANTMESH_REPLAY_SPEED": args.speed,
            "QUANTMESH_SKIP_CLOSURES": "true"}


def plan(args, addresses: dict[str, str]) -> list[ProcessSpec]:
    specs = [*plane_specs(addresses, instrument=args.instrument, env={"market_data": _feed_env(args)}),
             analysis_spec(addresses["analysis"])]
    port = WORKER_BASE_PORT
    for slug in [s.strip() for s in args.strategies.split(",") if s.strip()]:
        for role in ("entry", "exit"):
            address = f"127.0.0.1:{port}"
            specs.append(ProcessSpec(name=f"{slug}.{role}", module="services.strategies",
                                     args=(slug, "--role", role, "--param", f"instrument={args.instrument}"),
                                     address=address, env={"QUANTMESH_LISTEN": address}))
            port += 1
    workers = [s.address for s in specs if s.module == "services.strategies"]
    specs.append(console_spec(health=CONSOLE_HEALTH, http=args.console, workers=workers))
    worker_metrics = iter(range(WORKER_METRICS_BASE_PORT, WORKER_METRICS_BASE_PORT + len(workers)))
    return [with_metrics(s, METRICS_PORTS.get(s.name) or next(worker_metrics)) for s in specs]


def cli_name() -> str:
    """How the user reaches this CLI, for the lines we print: the wrapper they ran (./qm sets
    QUANTMESH_CLI), else `quantmesh` when it is on the PATH, else this Python's `-m services.cli`."""
    if named := os.environ.get("QUANTMESH_CLI"):
        return named
    return "quantmesh" if shutil.which("quantmesh") else f"{sys.executable} -m services.cli"


def banner(specs: list[ProcessSpec], data_dir: Path, database: str, *, cli: str = "quantmesh",
           quiet: bool = False) -> str:
    control = next(s.address for s in specs if s.name == "control")
    order = next(s.address for s in specs if s.name == "order")
    position = next(s.address for s in specs if s.name == "position")
    market = next(s.address for s in specs if s.name == "market_data")
    lines = ["", "quantmesh is up.", "", f"  {'process':<28} {'listens on':<18} module"]
    lines += [f"  {s.name:<28} {s.address:<18} {s.module} {' '.join(s.args)}" for s in specs]
    lines += ["", f"  database: {database}", f"  logs:     {data_dir / 'logs'}/<process>.log", "",
              "Try (grpcurl: the dev dependencies bring one, .venv/bin/grpcurl; reflection is on; no token needed "
              "on loopback):",
              f"  grpcurl -plaintext {control} quantmesh.control.v1.Control/GetFlags",
              f"  grpcurl -plaintext -d '{{\"instrument\": \"USD_JPY\", \"timeframe\": \"TIMEFRAME_M1\", \"limit\": 3, \"latest\": true}}' {market} quantmesh.market_data.v1.MarketData/GetCandles",
              f"  grpcurl -plaintext -d '{{\"limit\": 5}}' {order} quantmesh.order.v1.Order/ListOrders",
              f"  grpcurl -plaintext {position} quantmesh.position.v1.Position/Snapshot",
              f"  grpcurl -plaintext -d '{{\"global_lock\": true, \"reason\": \"kill switch drill\"}}' {control} quantmesh.control.v1.Control/SetGlobalFlags",
              f"  grpcurl -plaintext -d '{{\"global_lock\": false, \"reason\": \"drill over\"}}' {control} quantmesh.control.v1.Control/SetGlobalFlags",
              "", f"  {cli} status             health of every plane and each worker's last decision",
              f"  {cli} status --follow    orders, fills, refusals and flag changes (in another terminal)",
              f"  {cli} flags lock --reason \"drill\"   the kill switch (docs/control.md)",
              f"  the console   http://{console_address(specs)}/  (flags, kill switch, positions, orders, "
              "audit; docs/console.md)",
              "", "Ctrl-C stops everything." + ("" if quiet else " Orders, fills, refusals and flag changes follow "
                                                                  "(--quiet to leave them out):"), ""]
    return "\n".join(lines)


def console_address(specs: list[ProcessSpec]) -> str:
    return next(s.env["QUANTMESH_CONSOLE_LISTEN"] for s in specs if s.name == "console")


async def run_up(args) -> int:
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    addresses = {plane: f"127.0.0.1:{port}" for plane, port in DEFAULT_PORTS.items()}
    specs = plan(args, addresses)
    # Nothing starts while another mesh (or anything else) holds one of our addresses.
    if taken := taken_addresses(specs):
        print(refusal(taken, what="something already listens where this mesh would"), flush=True)
        return 1
    try:
        dialer = Dialer.from_env(Env())
    except ConfigError as exc:
        print(f"quantmesh up: {exc}", flush=True)
        return 2
    embedded = None
    database = os.environ.get("DATABASE_URL")
    if not database:
        print(f"starting the embedded PostgreSQL under {data_dir / 'pgdata'} ...", flush=True)
        embedded = EmbeddedPostgres(data_dir / "pgdata")
        database = await asyncio.to_thread(embedded.start)
    if held := await held_writer_leases(database, WRITER_SCHEMAS):
        print(refusal(held, what="another process already writes this database"), flush=True)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        return 1
    supervisor = Supervisor(data_dir / "logs", mesh_env(addresses, database_url=database, data_dir=data_dir),
                            dial=dial_like_the_planes(dialer.peers))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    tape = HeldLines()
    following: asyncio.Task | None = None
    try:
        for spec in specs:
            print(f"  starting {spec.name:<28} ...", end="", flush=True)
            await supervisor.start(spec)
            print(" healthy", flush=True)
            if spec.name == PLANES[-1] and not args.quiet:
                # Following from before the first worker starts: no order is missed; the lines wait for the banner.
                following = asyncio.create_task(follow(dialer, addresses, tape.say))
        (data_dir / "mesh.json").write_text(json.dumps(
            {"planes": {s.name: s.address for s in specs if s.name in (*PLANES, "analysis")},
             "workers": {s.name: s.address for s in specs if s.module == "services.strategies"},
             "console": f"http://{console_address(specs)}/", "database": database}, indent=2))
        print(banner(specs, data_dir, "embedded PostgreSQL" if embedded else "DATABASE_URL", cli=cli_name(),
                     quiet=args.quiet), flush=True)
        tape.release()
        try:
            await asyncio.wait_for(stop.wait(), args.duration or None)
        except asyncio.TimeoutError:
            print(f"--for {args.duration:g} s elapsed", flush=True)
    except RuntimeError as exc:
        print(f"\nquantmesh up failed: {exc}", flush=True)
        code = 1
    finally:
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        began = time.monotonic()
        print("stopping the mesh ...", flush=True)
        await supervisor.stop(first=lambda spec: spec.name not in PLANES)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        print(f"stopped in {time.monotonic() - began:.1f} s.", flush=True)
    return code


class HeldLines:
    """Tape lines held back until the banner is out, then printed as they come."""

    def __init__(self) -> None:
        self._held: list[str] | None = []

    def say(self, line: str) -> None:
        if self._held is None:
            print(line, flush=True)
        else:
            self._held.append(line)

    def release(self) -> None:
        held, self._held = self._held or [], None
        for line in held:
            print(line, flush=True)


async def follow(dialer: Dialer, addresses: dict[str, str], say) -> None:
    """The tape of this mesh until cancelled; a plane restarting is retried without a warning per attempt."""
    quiet = logging.getLogger("quantmesh.up.tape")
    quiet.setLevel(logging.ERROR)
    async with dialer.channel(addresses["order"]) as order, dialer.channel(addresses["control"]) as control:
        await Tape(order=order, control=control, say=say, log=quiet).run()
