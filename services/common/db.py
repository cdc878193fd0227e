"""asyncpg pool and per-plane schema migrations.

Each plane owns one schema and a folder of numbered SQL files (`0001_orders.sql`,
...). Migrations run at start under a PostgreSQL advisory lock, so two replicas
starting together apply each file exactly once, and a file already applied is skipped.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class PlaneConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query.

    asyncpg sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` on
    every release: one more round trip (and one more commit) per acquire, which on the
    order path cost as much as the write itself. The planes never leave session state on
    a pooled connection (no SET without LOCAL, no LISTEN, no cursors across calls; the
    migration lock is released in a finally), and an open transaction is still rolled
    back on release.
    """

    def get_reset_query(self) -> str:
        return ""


async def connect_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                       server_settings: dict[str, str] | None = None) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=30,
                                     connection_class=PlaneConnection, server_settings=server_settings)


def unnest_sql(first: int, types: Sequence[str]) -> str:
    """`unnest($first::t1[], $first+1::t2[], ...)`: many rows as one parameter per column."""
    return "unnest(" + ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(types)) + ")"


def as_columns(rows: Sequence[tuple], width: int) -> list[list]:
    """Rows -> one list per column, for `unnest_sql` (empty lists when there are no rows)."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def migration_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.glob("*.sql"))
    for path in files:
        if not _MIGRATION_NAME.match(path.name):
            raise ValueError(f"migration {path} is not named NNNN_lowercase_words.sql")
    return files


async def apply_migrations(pool: asyncpg.Pool, schema: str, folder: Path) -> list[str]:
    """Applies the files of `folder` not yet recorded in `<schema>.schema_migrations`.

    Returns the names applied by this call (empty when everything was applied before).
    """
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must be lowercase letters, digits and underscores")
    files = migration_files(folder)
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        # Session-level lock keyed by the schema: independent planes never wait on each other.
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"quantmesh:{schema}")
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch(f"SELECT name FROM {schema}.schema_migrations")}
            for path in files:
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL search_path TO {schema}, public")
                    await conn.execute(path.read_text())
                    await conn.execute(f"INSERT INTO {schema}.schema_migrations (name) VALUES ($1)", path.name)
                applied_now.append(path.name)
                log.info("applied migration", extra={"schema": schema, "migration": path.name})
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"quantmesh:{schema}")
    return applied_now


def url_with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def create_database(admin_url: str, prefix: str = "qm") -> str:
    """Creates an empty database named <prefix>_<random> on the server and returns its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url_with_database(admin_url, name)


async def drop_database(admin_url: str, database_url: str) -> None:
    """Drops the database of `database_url`, closing its leftover connections."""
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
