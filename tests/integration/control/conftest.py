"""A real control server in-process (GrpcHost on 127.0.0.1:0) on a fresh PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest

from quantmesh.control.v1 import control_pb2_grpc
from services.common.auth import TokenTable
from services.common.clock import WallClock
from services.common.db import apply_migrations, connect_pool
from services.common.server import GrpcHost
from services.control.engine import ControlEngine
from services.control.repository import SCHEMA, FlagsRepository
from services.control.server import CONTROL_POLICY, ControlServicer, control_binding
from services.common.db import create_database

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "control" / "migrations"


@dataclass
class RunningControl:
    host: GrpcHost
    engine: ControlEngine
    pool: asyncpg.Pool
    channel: grpc.aio.Channel
    stub: control_pb2_grpc.ControlStub
    database_url: str

    @property
    def address(self) -> str:
        return self.host.address


async def start_control(admin_url: str, *, tokens: str = "", heartbeat_seconds: float = 1.0,
                        watch_queue_size: int = 1000) -> RunningControl:
    url = await create_database(admin_url, prefix="control")
    pool = await connect_pool(url, max_size=4)
    await apply_migrations(pool, SCHEMA, MIGRATIONS)
    clock = WallClock()
    engine = await ControlEngine.open(FlagsRepository(pool), clock=clock, watch_queue_size=watch_queue_size)
    servicer = ControlServicer(engine, clock=clock, heartbeat_seconds=heartbeat_seconds)
    host = GrpcHost(listen="127.0.0.1:0", bindings=[control_binding(servicer)], tokens=TokenTable.parse(tokens),
                    policy=CONTROL_POLICY, grace_seconds=0.5)
    await host.start()
    channel = grpc.aio.insecure_channel(host.address)
    return RunningControl(host, engine, pool, channel, control_pb2_grpc.ControlStub(channel), url)


async def stop_control(control: RunningControl) -> None:
    control.engine.close_watches()
    await control.channel.close()
    await control.host.stop()
    await control.pool.close()


@pytest.fixture
async def control_factory(postgres_admin_url):
    """An async factory: `await control_factory(tokens=..., heartbeat_seconds=...)`; all stopped at teardown."""
    started: list[RunningControl] = []

    async def factory(**options) -> RunningControl:
        running = await start_control(postgres_admin_url, **options)
        started.append(running)
        return running

    yield factory
    for running in started:
        await stop_control(running)


@pytest.fixture
async def control(control_factory):
    return await control_factory()
