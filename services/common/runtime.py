"""Process wiring shared by every plane's __main__: logs, tracing, database, host."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg

from services.common.auth import AuthPolicy
from services.common.config import ServerConfig
from services.common.db import apply_migrations, connect_pool
from services.common.embedded_pg import EmbeddedPostgres
from services.common.lease import hold_writer_lease
from services.common.server import GrpcHost, ServiceBinding

log = logging.getLogger(__name__)


class Database:
    """A pool on DATABASE_URL, or on an embedded PostgreSQL when it is unset."""

    def __init__(self, pool: asyncpg.Pool, embedded: EmbeddedPostgres | None, url: str = "") -> None:
        self.pool = pool
        self.url = url  # for a pool of different settings (the paper venue's)
        self._embedded = embedded

    @classmethod
    async def open(cls, config: ServerConfig, *, schema: str, migrations: Path,
                   max_size: int = 10, writer: str | None = None, wait_for_flush: bool = True) -> "Database":
        """`writer`: the plane's name when it is the single writer of `schema`; its lease is taken
        before any migration runs, so a second process never changes the schema under the first.

        `wait_for_flush=False` runs the pool with synchronous_commit off: a commit is visible and
        survives the plane's own crash (kill -9) at once, and only a crash of PostgreSQL or the
        machine can lose its last few milliseconds. For data that can be rebuilt (candles from
        ticks), never for money."""
        embedded = None
        url = config.database_url
        if url is None:
            embedded = EmbeddedPostgres(config.data_dir / "pgdata")
            url = await asyncio.to_thread(embedded.start)
            log.info("using the embedded PostgreSQL", extra={"pgdata": str(config.data_dir / "pgdata")})
        if writer is not None:
            await hold_writer_lease(url, plane=writer, schema=schema, settings=config.writer_lease)
        pool = await connect_pool(url, max_size=max_size,
                                  server_settings=None if wait_for_flush else {"synchronous_commit": "off"})
        applied = await apply_migrations(pool, schema, migrations)
        if applied:
            log.info("migrations applied", extra={"schema": schema, "applied": applied})
        return cls(pool, embedded, url)

    async def close(self) -> None:
        await self.pool.close()
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)


def host_for(config: ServerConfig, bindings: Sequence[ServiceBinding], policy: AuthPolicy) -> GrpcHost:
    return GrpcHost(listen=config.listen, bindings=bindings, tokens=config.tokens, policy=policy,
                    grace_seconds=config.grace_seconds, port_file=config.port_file,
                    traced=config.otel_endpoint is not None)


OnStop = Callable[[], Awaitable[None]]


async def when_set(event: asyncio.Event, action: Callable[[], Awaitable[None]]) -> None:
    """Runs `action` once `event` is set: e.g. ends a plane's endless watch streams when its stop is
    requested, so the drain finishes at once instead of after the grace period."""
    await event.wait()
    await action()
