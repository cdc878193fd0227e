"""The whole mesh as real processes on loopback, for end-to-end tests and benchmarks.

Mirrors `quantmesh up` (the plane specs and shared environment of services/cli/planes.py):
control, market_data, order, position, then one ENTRY and one EXIT worker per strategy, every one its own
`python -m ...` process with the same environment `up` gives it, but on free ports
and with one database (DATABASE_URL) shared by every plane, each in its own schema.

The sources (control, market_data) are started together and waited for, then all the
rest at once, which roughly halves the start-up time on a small machine against one by
one; every plane copes with a neighbour that is not up yet (the followers reconnect, the
workers retry their warm-up).

    mesh = Mesh(database_url=url, log_dir=tmp, feed=bars_feed(bid, ask), speed="120x",
                strategies=[StrategyPair("ma_cross", {"fast_period": "3", "slow_period": "8"})])
    mesh.start()
    ... mesh.address("order"), mesh.worker_address("ma_cross", "entry") ...
    mesh.stop()
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.cli.planes import PLANES, analysis_spec, mesh_env, plane_specs
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

ROLES = ("entry", "exit")
#: Started first and waited for: what the others follow. Analysis goes with them so the workers
#: find their settings at once (its own followers of fills and candles just retry until the planes are up).
SOURCES = ("control", "market_data", "analysis")


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyPair:
    """One strategy: an ENTRY and an EXIT worker with the same params."""

    slug: str
    params: Mapping[str, str] = field(default_factory=dict)


def bars_feed(bid: Path, ask: Path) -> str:
    """QUANTMESH_FEED for a pair of one-minute bid/ask bar files."""
    return f"bars:{Path(bid).resolve()},{Path(ask).resolve()}"


def tick_feed(path: Path) -> str:
    """QUANTMESH_FEED for a tick file."""
    return f"replay:{Path(path).resolve()}"


class Mesh:
    def __init__(self, *, database_url: str, log_dir: Path, feed: str, speed: str,
                 strategies: Sequence[StrategyPair], instrument: str = "USD_JPY",
                 otel_endpoint: str | None = None, extra_env: Mapping[str, str] | None = None,
                 plane_env: Mapping[str, Mapping[str, str]] | None = None, analysis: bool = False) -> None:
        """`analysis`: run the analysis plane too (as `quantmesh up` does); the workers then follow it.
        `plane_env` may name it ("analysis") like any plane."""
        self.log_dir = Path(log_dir)
        self.instrument = instrument
        self.strategies = tuple(strategies)
        self.addresses = {plane: f"127.0.0.1:{free_port()}" for plane in (*PLANES, *(("analysis",) if analysis else ()))}
        self.worker_addresses = {(s.slug, role): f"127.0.0.1:{free_port()}" for s in self.strategies for role in ROLES}
        self._base_env = {
            **mesh_env(self.addresses, database_url=database_url, data_dir=self.log_dir / "data"),
            # Empty = no export; set explicitly so a developer's own OTEL endpoint never leaks in.
            "OTEL_EXPORTER_OTLP_ENDPOINT": otel_endpoint or "",
            # Spans reach the collector within a fraction of a second instead of every 5 s.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "QUANTMESH_GRACE_SECONDS": "1",
            **(extra_env or {}),
        }
        self._feed = feed
        self._speed = speed
        self._plane_env = {k: dict(v) for k, v in (plane_env or {}).items()}
        self.processes: dict[str, PlaneProcess] = {}

    # ---- what runs --------------------------------------------------------------------------

    def _plan(self) -> list[tuple[str, str, dict[str, str], tuple[str, ...], str]]:
        """(name, module, env, args, address) for every process, in `quantmesh up` order."""
        feed = {"QUANTMESH_FEED": self._feed, "QUANTMESH_REPLAY_SPEED": self._speed}
        env = {plane: {**(feed if plane == "market_data" else {}), **self._plane_env.get(plane, {})}
               for plane in PLANES}
        specs = plane_specs(self.addresses, instrument=self.instrument, env=env)
        if "analysis" in self.addresses:
            spec = analysis_spec(self.addresses["analysis"])
            specs.append(dataclasses.replace(spec, env={**spec.env, **self._plane_env.get("analysis", {})}))
        out = [(spec.name, spec.module, dict(spec.env), spec.args, spec.address) for spec in specs]
        for pair in self.strategies:
            params = {"instrument": self.instrument, **pair.params}
            for role in ROLES:
                address = self.worker_addresses[(pair.slug, role)]
                out.append((f"{pair.slug}.{role}", "services.strategies",
                            {"QUANTMESH_LISTEN": address, "QUANTMESH_STRATEGY_PARAMS": json.dumps(params)},
                            (pair.slug, "--role", role), address))
        return out

    def start(self, timeout: float = 90.0) -> "Mesh":
        plan = self._plan()
        # Two waves: the sources (control, market_data) first, then everything that follows
        # them. The order plane waits only a moment for the tick stream its paper venue fills
        # at; had it served without it, ticks pushed into the fresh mesh would pass it by.
        waves = [[step for step in plan if step[0] in SOURCES], [step for step in plan if step[0] not in SOURCES]]
        try:
            for wave in waves:
                for name, module, env, args, _ in wave:
                    process = PlaneProcess(module, {**self._base_env, **env}, self.log_dir / name, args=args)
                    self.processes[name] = process.start()
                for name, _, _, _, address in wave:
                    self.processes[name].wait_healthy(address, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, int | None]:
        """As `quantmesh up` stops: the workers all at once, then the planes all at once."""
        codes = {}
        planes = (*PLANES, "analysis")
        workers = [name for name in self.processes if name not in planes]
        for group in (workers, [name for name in self.processes if name in planes]):
            for name in group:
                self.processes[name].ask_to_stop()
            for name in group:
                codes[name] = self.processes[name].wait_stopped(timeout=15)
        return codes

    # ---- where things are -------------------------------------------------------------------

    def address(self, plane: str) -> str:
        return self.addresses[plane]

    def worker_address(self, slug: str, role: str) -> str:
        return self.worker_addresses[(slug, role)]

    def dead(self) -> dict[str, int]:
        """Processes that exited on their own, with their exit codes."""
        return {name: p.proc.returncode for name, p in self.processes.items()
                if p.proc is not None and p.proc.poll() is not None}

    def tails(self, lines: int = 20) -> str:
        return "\n".join(f"----- {name} ({p.log_path})\n{p.tail(lines)}" for name, p in self.processes.items())


# ---- reading the mesh (async clients; the e2e tests and the benchmark use them) ----------------

async def all_orders(order_stub, **filters) -> list:
    """Every order (newest first), following ListOrders pages."""
    from quantmesh.order.v1 import order_pb2

    out, token = [], ""
    while True:
        reply = await order_stub.ListOrders(order_pb2.ListOrdersRequest(limit=1000, page_token=token, **filters))
        out.extend(reply.orders)
        token = reply.next_page_token
        if not token:
            return out


async def fills_up_to(order_stub, last_seq: int, timeout: float = 30.0) -> list:
    """Order.WatchFills from the first fill up to and including `last_seq` (WatchFillsResponse events)."""
    import asyncio

    from quantmesh.order.v1 import order_pb2

    events = []
    if last_seq == 0:
        return events
    call = order_stub.WatchFills(order_pb2.WatchFillsRequest(resume_after_seq=0))

    async def read() -> None:
        async for event in call:
            events.append(event)
            if event.seq >= last_seq:
                return

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        call.cancel()
    return events
