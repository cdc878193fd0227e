"""The four planes as processes for `quantmesh backtest --mesh`, on a database of their own.

Every run starts from empty books: a fresh embedded PostgreSQL under the output folder, or,
with DATABASE_URL, a new database on that server which is dropped afterwards. The planes
listen on free loopback ports, so a `quantmesh up` on the default ports is not disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from services.backtest.mesh import MeshAddresses
from services.cli.planes import PLANES, mesh_env, plane_specs
from services.cli.supervisor import Supervisor
from services.common.db import create_database, drop_database
from services.common.embedded_pg import EmbeddedPostgres
from services.common.ports import free_port
from services.position.currency import quote_currency

#: The order plane limits orders per second of *wall* time; a backtest replays hours of
#: market per second, so that one rule would refuse orders the live pace never sends. The
#: in-process transport checks it in data time. Set the variable to keep a limit anyway.
BACKTEST_ORDER_RATE = "1000000"


@contextlib.asynccontextmanager
async def _database(work_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """Yields (url, description)."""
    server = os.environ.get("DATABASE_URL")
    if server:
        url = await create_database(server, prefix="qm_backtest")
        try:
            await _throwaway(url)
            yield url, f"database {urlsplit(url).path.lstrip('/')} on DATABASE_URL (dropped afterwards)"
        finally:
            await drop_database(server, url)
        return
    embedded = EmbeddedPostgres(work_dir / "pgdata", fresh=True)
    url = await asyncio.to_thread(embedded.start)
    try:
        await _throwaway(url)
        yield url, f"embedded PostgreSQL under {work_dir / 'pgdata'}"
    finally:
        await asyncio.to_thread(embedded.stop)


async def _throwaway(url: str) -> None:
    """The run's database is thrown away afterwards, so its commits need not wait for the WAL flush.

    The planes' code is unchanged (same statements, same transactions, same order); only the
    server stops waiting for the disk at each commit, which was most of a step's time.
    """
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'ALTER DATABASE "{urlsplit(url).path.lstrip("/")}" SET synchronous_commit = off')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def mesh_planes(work_dir: Path, *, instrument: str, starting_cash: Decimal, account: str = "backtest",
                      currency: str | None = None, factors: str = "none",
                      announce=lambda line: None) -> AsyncIterator[MeshAddresses]:
    """`factors`: what the strategy reads (Strategy.factor_specs()); "none" computes none."""
    work_dir.mkdir(parents=True, exist_ok=True)
    addresses = {plane: f"127.0.0.1:{free_port()}" for plane in PLANES}
    per_plane = {
        # The driver reads every candle of a step before deciding; never cut it off.
        "market_data": {"QUANTMESH_FEED": "push", "QUANTMESH_STREAM_QUEUE": "1000000",
                        "QUANTMESH_FACTORS": factors or "none"},
        "order": {"QUANTMESH_RISK_MAX_ORDERS_PER_SECOND":
                  os.environ.get("QUANTMESH_RISK_MAX_ORDERS_PER_SECOND", BACKTEST_ORDER_RATE),
                  # Risk waits for the position plane's view to include every fill so far, however
                  # slow this machine: the same figures as in-process, never a lagging view.
                  "QUANTMESH_EXPOSURE_CATCH_UP_SECONDS": "60"},
        # The in-process backtest's account currency: the instrument's quote currency unless given.
        "position": {"QUANTMESH_STARTING_CASH": str(starting_cash),
                     "QUANTMESH_ACCOUNT_CURRENCY": currency or quote_currency(instrument)},
    }
    async with _database(work_dir) as (url, description):
        announce(f"mesh: {description}")
        base_env = {**mesh_env(addresses, database_url=url, data_dir=work_dir),
                    # The account the backtest trades (BacktestSettings.account): the only one the planes know.
                    "QUANTMESH_ACCOUNT": account, "QUANTMESH_MODE": "backtest",
                    "QUANTMESH_LOG_LEVEL": os.environ.get("QUANTMESH_LOG_LEVEL", "WARNING")}
        supervisor = Supervisor(work_dir / "logs", base_env)
        try:
            for spec in plane_specs(addresses, instrument=instrument, env=per_plane):
                await supervisor.start(spec)
                announce(f"mesh: {spec.name:<12} {spec.address}  (log {work_dir / 'logs' / (spec.name + '.log')})")
            yield MeshAddresses(**addresses)
        finally:
            await supervisor.stop()
