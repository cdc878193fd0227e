"""A real PostgreSQL for tests: DATABASE_URL when set, else an embedded pgserver.

The embedded server lives under .quantmesh/test-pg. A run that was killed leaves
its server running (pgserver does not stop an orphan), so `start_test_postgres`
reaps such a server first and always starts from an empty data directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
