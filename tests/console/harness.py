"""A real mesh with the console in front of it, driven like an operator would.

- `ConsoleMesh`: every plane as its own process on a pushed feed (the test sets the quotes with
  MarketData.PublishTicks), one strategy pair, /metrics on every plane, and the console process
  with two operators (alice, an operator; bob, a viewer) whose alerts go to a loopback webhook
  receiver. Every plane requires bearer tokens, as in a cluster: the planes present a service
  token, the workers a strategy token, the console its own operator token (actor "console"),
  and the test an operator token of its own ("desk").
- `TickDriver`: quotes in data time, 5 s apart, so each one closes an S5 candle.
- `WebhookReceiver`: the chat the alerts go to.
- `eventually`: waits on a condition with a timeout (never on the wall clock alone).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2
from services.cli.planes import mesh_env
from services.common.auth import bearer_metadata
from services.common.timeutil import to_timestamp
from services.console.operators import MIN_ITERATIONS, hash_secret
from tests.support.mesh import Mesh, StrategyPair
from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT
from tests.support.processes import PlaneProcess

#: Who is who on the planes: the console by its own token (actor "console").
TOKENS = {"console-token": "console:operator", "desk-token": "desk:operator", "mesh-token": "mesh:service",
          "strategy-token": "strategies:strategy"}
OPERATOR = ("alice", "alice-secret-for-tests")
VIEWER = ("bob", "bob-secret-for-tests")
#: The test's own calls (a manual Submit, PublishTicks) as an operator with grpcurl would make them.
DESK_TOKEN = "desk-token"
DESK = bearer_metadata(DESK_TOKEN)
TOKEN_TABLE = ",".join(f"{token}={who}" for token, who in TOKENS.items())
#: A strategy that decides on every S5 candle but never enters (no momentum reaches 1000 pips): its
#: workers run, pause and resume, while every order and position in the mesh is the test's own.
STRATEGY = StrategyPair(slug="scalp_ping_5s", params={"warmup_bars": "20", "min_momentum_pips": "1000"})
INSTRUMENT = "USD_JPY"
SCREENSHOTS = PROJECT_ROOT / ".quantmesh" / "test-output" / "console"


async def eventually(check, *, timeout: float, what: str, every: float = 0.25, mesh: "ConsoleMesh | None" = None):
    """Polls `check()` (async; truthy when done) until it holds, failing with the processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            tails = mesh.tails() if mesh is not None else ""
            raise AssertionError(f"{what} did not happen within {timeout:g} s\n{tails}")
        await asyncio.sleep(every)


class WebhookReceiver:
    """A loopback chat webhook: remembers every JSON body posted to /hook."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.status = 200
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> "WebhookReceiver":
        async def hook(request: web.Request) -> web.Response:
            self.messages.append(await request.json())
            return web.json_response({"ok": self.status < 300}, status=self.status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    def texts(self) -> list[str]:
        return [m.get("text", "") for m in self.messages]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class TickDriver:
    """Publishes quotes in data time: every step moves 5 s on, so an S5 candle closes per tick."""

    channel: object
    instrument: str = INSTRUMENT
    moment: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, 1, tzinfo=timezone.utc))
    bid: Decimal = Decimal("157.100")
    spread: Decimal = Decimal("0.003")

    async def step(self, count: int = 1) -> market_data_pb2.PublishTicksResponse:
        stub = market_data_pb2_grpc.MarketDataStub(self.channel)
        ticks = []
        for _ in range(count):
            self.moment += timedelta(seconds=5)
            ticks.append(market_data_pb2.Tick(instrument=self.instrument, time=to_timestamp(self.moment),
                                              bid=str(self.bid), ask=str(self.bid + self.spread)))
        return await stub.PublishTicks(market_data_pb2.PublishTicksRequest(ticks=ticks), metadata=DESK, timeout=10)


def manual_intent(client_order_id: str, *, quantity: str = "1000", side=common_pb2.SIDE_BUY,
                  role=common_pb2.STRATEGY_ROLE_ENTRY, decision_time: datetime | None = None) -> order_pb2.OrderIntent:
    intent = order_pb2.OrderIntent(client_order_id=client_order_id, strategy_slug="manual", role=role,
                                   instrument=INSTRUMENT, side=side,
                                   quantity=quantity, order_type=order_pb2.ORDER_TYPE_MARKET)
    if decision_time is not None:
        intent.decision_time.CopyFrom(to_timestamp(decision_time))
    return intent


def operators() -> str:
    """QUANTMESH_CONSOLE_USERS for alice (operator) and bob (viewer), hashed with the fewest iterations allowed."""
    return ",".join(f"{name}:{role}:{hash_secret(secret, iterations=MIN_ITERATIONS)}"
                    for (name, secret), role in ((OPERATOR, "operator"), (VIEWER, "viewer")))


def console_env(*, addresses, database_url: str, log_dir: Path, grpc: str, http: str, metrics: str = "",
                users: str, workers: str = "", webhook_url: str = "", **more: str) -> dict[str, str]:
    return {
        **mesh_env(addresses, database_url=database_url, data_dir=log_dir / "data"),
        "QUANTMESH_LISTEN": grpc, "QUANTMESH_CONSOLE_LISTEN": http, "QUANTMESH_METRICS_LISTEN": metrics,
        "QUANTMESH_CONSOLE_USERS": users, "QUANTMESH_CONSOLE_WORKERS": workers,
        "QUANTMESH_CONSOLE_POLL_SECONDS": "0.5", "QUANTMESH_ALERT_WEBHOOK_URL": webhook_url,
        "QUANTMESH_ALERT_REFUSAL_BURST": "3", "QUANTMESH_TOKENS": "", "QUANTMESH_TOKEN": "",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "", "QUANTMESH_GRACE_SECONDS": "1", **more,
    }


class ConsoleMesh:
    def __init__(self, *, database_url: str, log_dir: Path, webhook_url: str) -> None:
        self.log_dir = log_dir
        self.metrics_ports = {plane: free_port() for plane in ("market_data", "control", "order", "position")}
        # With the analysis plane, as `quantmesh up` runs it: the workers record their decisions there and
        # the console shows its figures.
        self.mesh = Mesh(
            database_url=database_url, log_dir=log_dir, feed="push", speed="max", strategies=[STRATEGY],
            analysis=True,
            extra_env={"QUANTMESH_TOKENS": TOKEN_TABLE, "QUANTMESH_TOKEN": "strategy-token"},  # the workers'
            plane_env={**{plane: {"QUANTMESH_METRICS_LISTEN": f"127.0.0.1:{port}", "QUANTMESH_TOKEN": "mesh-token"}
                          for plane, port in self.metrics_ports.items()},
                       "analysis": {"QUANTMESH_TOKEN": "mesh-token"}})
        self.analysis_address = self.mesh.address("analysis")
        self.console_grpc = f"127.0.0.1:{free_port()}"
        self.console_http = f"127.0.0.1:{free_port()}"
        self.console_metrics = f"127.0.0.1:{free_port()}"
        users = operators()
        workers = ",".join(self.mesh.worker_address(STRATEGY.slug, role) for role in ("entry", "exit"))
        self.console_env = console_env(addresses=self.mesh.addresses, database_url=database_url, log_dir=log_dir,
                                       grpc=self.console_grpc, http=self.console_http, metrics=self.console_metrics,
                                       users=users, workers=workers, webhook_url=webhook_url,
                                       QUANTMESH_TOKENS=TOKEN_TABLE, QUANTMESH_TOKEN="console-token")
        self.console: PlaneProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.console_http}"

    def metrics_url(self, process: str) -> str:
        address = self.console_metrics if process == "console" else f"127.0.0.1:{self.metrics_ports[process]}"
        return f"http://{address}/metrics"

    def address(self, plane: str) -> str:
        return self.mesh.address(plane)

    def start(self) -> "ConsoleMesh":
        self.mesh.start()
        try:
            self.console = PlaneProcess("services.console", self.console_env, self.log_dir / "console").start()
            self.console.wait_healthy(self.console_grpc, timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.console is not None:
            self.console.terminate(timeout=15)
        self.mesh.stop()

    def tails(self) -> str:
        console = f"----- console ({self.console.log_path})\n{self.console.tail(30)}" if self.console else ""
        return f"{self.mesh.tails(15)}\n{console}"
