"""A real market-data plane in-process (GrpcHost on 127.0.0.1:0, real PostgreSQL) and test feeds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.auth import TokenTable
from services.common.config import Env
from services.common.db import apply_migrations, connect_pool
from services.common.server import GrpcHost, binding
from services.common.telemetry import setup_tracing
from services.market_data.__main__ import MIGRATIONS
from services.market_data.config import MarketDataConfig
from services.market_data.feeds.base import FeedTick
from services.market_data.plane import MarketDataPlane
from services.market_data.repository import SCHEMA
from services.market_data.server import POLICY
from tests.support.data import M1_ASK, M1_BID, head_of
from services.common.db import create_database


class GatedFeed:
    """Real ticks, let through only as the test releases them (to interleave publishing and subscribing)."""

    def __init__(self, ticks: list[FeedTick], name: str = "replay:gated") -> None:
        self.name = name
        self.instruments = tuple(dict.fromkeys(t.instrument for t in ticks)) or ("USD_JPY",)
        self._ticks = ticks
        self._allowed = 0
        self._changed = asyncio.Event()
        self.delivered = 0
        self.consumed = 0  # ticks the plane has finished with (it came back for the next one)

    def release(self, count: int) -> None:
        self._allowed = min(len(self._ticks), self._allowed + count)
        self._changed.set()

    async def ticks(self) -> AsyncIterator[FeedTick]:
        for tick in self._ticks:
            while self.delivered >= self._allowed:
                self._changed.clear()
                await self._changed.wait()
            self.delivered += 1
            yield tick
            self.consumed += 1


def bar_files(tmp_path: Path, rows: int) -> tuple[Path, Path]:
    return head_of(M1_BID, tmp_path / "bid.csv", rows), head_of(M1_ASK, tmp_path / "ask.csv", rows)


class RunningPlane:
    def __init__(self, plane: MarketDataPlane, host: GrpcHost, channel: grpc.aio.Channel) -> None:
        self.plane, self.host, self.channel = plane, host, channel
        self.stub = market_data_pb2_grpc.MarketDataStub(channel)


@asynccontextmanager
async def running_plane(database_url: str, env: dict[str, str], *, feed=None,
                        tokens: str = "") -> AsyncIterator[RunningPlane]:
    config = MarketDataConfig.from_env(Env({"QUANTMESH_LISTEN": "127.0.0.1:0", **env}))
    pool = await connect_pool(database_url, max_size=4)
    await apply_migrations(pool, SCHEMA, MIGRATIONS)
    plane = await MarketDataPlane.open(config, pool, feed=feed)
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(tokens), policy=POLICY, grace_seconds=0.5,
                    bindings=[binding(market_data_pb2, "MarketData",
                                      market_data_pb2_grpc.add_MarketDataServicer_to_server, plane.servicer)])
    await host.start()
    plane.start()
    channel = grpc.aio.insecure_channel(host.address)
    try:
        yield RunningPlane(plane, host, channel)
    finally:
        await channel.close()
        plane.close_streams()
        await host.stop()
        await plane.stop()
        await pool.close()


@pytest.fixture(scope="session", autouse=True)
def tracing():
    """A real tracer provider (exporting nowhere), so events carry real trace contexts."""
    return setup_tracing("market-data-test", None)


@pytest.fixture
async def fresh_database_url(postgres_admin_url) -> str:
    """An empty database for one test (the restart and resume tests need their own)."""
    return await create_database(postgres_admin_url)
