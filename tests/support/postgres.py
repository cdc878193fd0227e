"""A real PostgreSQL for tests: DATABASE_URL when set, else an embedded pgserver.

The embedded server lives under .quantmesh/test-pg. A run that was killed leaves
its server running (pgserver does not stop an orphan), so `start_test_postgres`
reaps such a server first and always starts from an empty data directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil

from services.common.embedded_pg import EmbeddedPostgres, reap_stale

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start_test_postgres() -> tuple[str, EmbeddedPostgres | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    # One data directory per test process, so parallel runs never share a server.
    embedded = EmbeddedPostgres(PROJECT_ROOT / ".quantmesh" / f"test-pg-{os.getpid()}", fresh=True)
    # Remove the data directories of earlier test processes that are gone (a killed run
    # leaves its server running); never touch one whose owner is alive, it may be starting.
    for stale in (PROJECT_ROOT / ".quantmesh").glob("test-pg-*"):
        owner = stale.name.removeprefix("test-pg-")
        if owner.isdigit() and int(owner) != os.getpid() and not psutil.pid_exists(int(owner)):
            reap_stale(stale)
            shutil.rmtree(stale, ignore_errors=True)
    return embedded.start(), embedded


def url_with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def create_database(admin_url: str, prefix: str = "qm") -> str:
    """Creates an empty database and returns its URL; each test module gets its own."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url_with_database(admin_url, name)
