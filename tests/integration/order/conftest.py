"""Real control, market_data and order processes on loopback, on the module's PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from tests.support.data import TRUEFX_TICKS
from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT
from tests.support.processes import PlaneProcess
from services.common.db import apply_migrations, connect_pool
from services.order.repository import MIGRATIONS, SCHEMA

LOG_DIR = PROJECT_ROOT / ".quantmesh" / "test-logs" / "order"
TICKS = TRUEFX_TICKS


@pytest.fixture(scope="module")
def control(database_url):
    address = f"127.0.0.1:{free_port()}"
    plane = PlaneProcess("services.control", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": address,
                                              "QUANTMESH_HEARTBEAT_SECONDS": "0.5"}, LOG_DIR).start()
    plane.wait_healthy(address)
    yield address
    plane.terminate()


@pytest.fixture(scope="module")
def market_data(database_url):
    """A live quote stream: the real USD/JPY ticks replayed ten times faster than they happened."""
    address = f"127.0.0.1:{free_port()}"
    plane = PlaneProcess("services.market_data", {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_FEED": f"replay:{TICKS}",
        "QUANTMESH_REPLAY_SPEED": "10x", "QUANTMESH_INSTRUMENTS": "USD_JPY"}, LOG_DIR).start()
    plane.wait_healthy(address)
    yield address
    plane.terminate()


@pytest.fixture
async def pool(database_url):
    """A pool on the module's database, with the order plane's tables in place."""
    pool = await connect_pool(database_url)
    await apply_migrations(pool, SCHEMA, MIGRATIONS)
    yield pool
    await pool.close()


class OrderPlane:
    """One order process; `restart` keeps the database, so the order book and the venue survive."""

    def __init__(self, env: dict[str, str]) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.env = {**env, "QUANTMESH_LISTEN": self.address}
        self.process: PlaneProcess | None = None

    def start(self, **extra: str) -> "OrderPlane":
        self.process = PlaneProcess("services.order", {**self.env, **extra}, LOG_DIR).start()
        self.process.wait_healthy(self.address)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()


@pytest.fixture(scope="module")
def order_env(database_url, control, market_data):
    return {"DATABASE_URL": database_url, "QUANTMESH_CONTROL_ADDR": control,
            "QUANTMESH_MARKET_DATA_ADDR": market_data, "QUANTMESH_POSITIONS_SOURCE": "own_book",
            "QUANTMESH_INSTRUMENTS": "USD_JPY,EUR_USD,BTC_JPY", "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000"}


def intent(cid: str, **overrides) -> order_pb2.OrderIntent:
    fields = dict(client_order_id=cid, strategy_slug="ma_cross", role=common_pb2.STRATEGY_ROLE_ENTRY,
                  instrument="USD_JPY", side=common_pb2.SIDE_BUY, quantity="1000",
                  order_type=order_pb2.ORDER_TYPE_MARKET)
    fields.update(overrides)
    return order_pb2.OrderIntent(**fields)


def far_limit(cid: str, **overrides) -> order_pb2.OrderIntent:
    """A buy limit far below the market: it rests, nothing fills."""
    return intent(cid, order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
                  time_in_force=order_pb2.TIME_IN_FORCE_GTC, **overrides)


async def wait_for_state(stub, cid: str, states: set[int], timeout: float = 30.0) -> order_pb2.GetOrderResponse:
    deadline = time.monotonic() + timeout
    while True:
        reply = await stub.GetOrder(order_pb2.GetOrderRequest(client_order_id=cid))
        if reply.order.state in states or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.1)


async def venue_orders(database_url: str, cid: str | None = None) -> int:
    """Counts orders at the paper venue (the fake exchange's own book), as an auditor would."""
    conn = await asyncpg.connect(database_url)
    try:
        if cid is None:
            return await conn.fetchval("SELECT count(*) FROM paper_venue.orders")
        return await conn.fetchval("SELECT count(*) FROM paper_venue.orders WHERE client_order_id = $1", cid)
    finally:
        await conn.close()


async def set_global(control_address: str, **flags) -> None:
    async with grpc.aio.insecure_channel(control_address) as channel:
        await control_pb2_grpc.ControlStub(channel).SetGlobalFlags(
            control_pb2.SetGlobalFlagsRequest(reason="integration test", **flags))


def order_stub(channel) -> order_pb2_grpc.OrderStub:
    return order_pb2_grpc.OrderStub(channel)


@pytest.fixture
async def stub(order_plane):
    """An Order stub on the module's `order_plane` (each module starts its plane with its own settings)."""
    async with grpc.aio.insecure_channel(order_plane.address) as channel:
        yield order_stub(channel)


__all__ = ["OrderPlane", "intent", "far_limit", "wait_for_state", "venue_orders", "set_global", "order_stub"]
