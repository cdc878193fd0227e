"""A real PostgreSQL for tests: DATABASE_URL when set, else an embedded pgserver.

The embedded server lives under .quantmesh/test-pg-<pid>. A run that was killed leaves
its server running (pgserver does not stop an orphan), so `start_test_postgres`
reaps such a server first and always starts from an empty data directory. At the end of
the session `finish_test_postgres` stops it and removes its data (hundreds of MB after a
full run), unless tests failed: then the data stays for a look at what they left.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

from services.common.embedded_pg import EmbeddedPostgres, reap_stale

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_pg_dir() -> Path:
    """This test process's embedded PostgreSQL data (one per process: parallel runs never share a server)."""
    return PROJECT_ROOT / ".quantmesh" / f"test-pg-{os.getpid()}"


def start_test_postgres() -> tuple[str, EmbeddedPostgres | None]:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url, None
    embedded = EmbeddedPostgres(test_pg_dir(), fresh=True)
    # Remove the data directories of earlier test processes that are gone (a killed run
    # leaves its server running); never touch one whose owner is alive, it may be starting.
    for stale in (PROJECT_ROOT / ".quantmesh").glob("test-pg-*"):
        owner = stale.name.removeprefix("test-pg-")
        if owner.isdigit() and int(owner) != os.getpid() and not psutil.pid_exists(int(owner)):
            reap_stale(stale)
            shutil.rmtree(stale, ignore_errors=True)
    return embedded.start(), embedded


def finish_test_postgres(embedded: EmbeddedPostgres | None, *, keep: bool) -> Path | None:
    """Stops the embedded server; removes its data unless `keep`. Returns the folder kept, if any."""
    if embedded is None:
        return None
    embedded.stop()
    if keep:
        return test_pg_dir()
    shutil.rmtree(test_pg_dir(), ignore_errors=True)
    return None
