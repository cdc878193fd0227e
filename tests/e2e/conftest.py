"""One whole mesh per test session: every plane and three strategy pairs as real processes.

The mesh replays the real USD/JPY one-minute bid/ask bars of February 2013 (data/,
gzipped, read in place) at 120x, so an M1 candle closes every half second of
wall time and the three strategies below trade within the first 10-20 seconds.
Every plane exports its spans to an in-process OTLP receiver (tests/support/otlp.py),
so the tracing test reads the same run the other tests drive.

One database serves the whole mesh (each plane in its own schema), created from the
session's PostgreSQL the same way the `database_url` fixture does for a module: that
fixture is module-scoped and the mesh lives for the session.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import grpc
import pytest

from quantmesh.control.v1 import control_pb2_grpc
from quantmesh.order.v1 import order_pb2_grpc
from quantmesh.position.v1 import position_pb2_grpc
from quantmesh.strategy.v1 import strategy_pb2_grpc
from tests.support.data import M1_ASK, M1_BID
from tests.support.mesh import Mesh, StrategyPair, bars_feed
from tests.support.otlp import OtlpReceiver
from services.common.db import create_database

#: Short periods and tight exits so that each pair opens and closes positions within
#: a few minutes of market time.
STRATEGIES = (
    StrategyPair(slug="ma_cross", params={"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3",
                                          "take_profit_pips": "3", "max_hold_minutes": "5", "warmup_bars": "20"}),
    StrategyPair(slug="rsi_threshold", params={"period": "5", "stop_loss_pips": "3", "take_profit_pips": "3",
                                               "max_hold_minutes": "5", "warmup_bars": "20"}),
    StrategyPair(slug="scalp_ping_5s", params={"warmup_bars": "20"}),
)
SPEED = "120x"


@pytest.fixture(scope="session")
def otlp_receiver():
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
async def mesh(postgres_admin_url, otlp_receiver, tmp_path_factory):
    database_url = await create_database(postgres_admin_url, prefix="qm_e2e")
    running = Mesh(
        database_url=database_url, log_dir=tmp_path_factory.mktemp("mesh"),
        feed=bars_feed(M1_BID, M1_ASK),
        speed=SPEED, strategies=STRATEGIES, otel_endpoint=otlp_receiver.endpoint,
        # A scalper on real data loses often; the test is about the mesh, not about this risk rule.
        plane_env={"order": {"QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000"}},
    )
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        dead = running.dead()
        codes = await asyncio.to_thread(running.stop)
        if dead:
            print(f"processes that died during the session: {dead}\n{running.tails()}")
        print(f"mesh stopped: {codes}; logs under {running.log_dir}")


@pytest.fixture(scope="session")
async def stubs(mesh):
    channels = {name: grpc.aio.insecure_channel(mesh.address(name)) for name in ("order", "position", "control")}
    workers = {key: grpc.aio.insecure_channel(address) for key, address in mesh.worker_addresses.items()}
    yield SimpleNamespace(
        order=order_pb2_grpc.OrderStub(channels["order"]),
        position=position_pb2_grpc.PositionStub(channels["position"]),
        control=control_pb2_grpc.ControlStub(channels["control"]),
        workers={key: strategy_pb2_grpc.StrategyStub(channel) for key, channel in workers.items()},
    )
    for channel in [*channels.values(), *workers.values()]:
        await channel.close()
