"""One mesh with the console for the console's end-to-end tests (tests/console/harness.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from quantmesh.control.v1 import control_pb2_grpc
from quantmesh.order.v1 import order_pb2_grpc
from quantmesh.position.v1 import position_pb2_grpc
from quantmesh.strategy.v1 import strategy_pb2_grpc
from services.common.channels import open_channel
from services.common.db import create_database
from tests.console.harness import DESK_TOKEN, STRATEGY, ConsoleMesh, TickDriver, WebhookReceiver


@pytest.fixture(scope="session")
async def webhook():
    receiver = await WebhookReceiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="session")
async def console_mesh(postgres_admin_url, tmp_path_factory, webhook):
    database_url = await create_database(postgres_admin_url, prefix="qm_console")
    running = ConsoleMesh(database_url=database_url, log_dir=tmp_path_factory.mktemp("console-mesh"),
                          webhook_url=webhook.url)
    await asyncio.to_thread(running.start)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        print(f"console mesh stopped; logs under {running.log_dir}")


@pytest.fixture(scope="session")
async def planes(console_mesh):
    """gRPC stubs to the planes and the workers, every call with the test's own operator token ("desk")."""
    channels = {name: open_channel(console_mesh.address(name), token=DESK_TOKEN, traced=False)
                for name in ("market_data", "order", "position", "control")}
    workers = {role: open_channel(console_mesh.mesh.worker_address(STRATEGY.slug, role), token=DESK_TOKEN,
                                  traced=False)
               for role in ("entry", "exit")}
    yield SimpleNamespace(
        order=order_pb2_grpc.OrderStub(channels["order"]),
        position=position_pb2_grpc.PositionStub(channels["position"]),
        control=control_pb2_grpc.ControlStub(channels["control"]),
        workers={role: strategy_pb2_grpc.StrategyStub(channel) for role, channel in workers.items()},
        ticks=TickDriver(channels["market_data"]),
    )
    for channel in [*channels.values(), *workers.values()]:
        await channel.close()
