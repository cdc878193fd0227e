"""An embedded PostgreSQL (pgserver) for machines with none installed.

Used when DATABASE_URL is unset. pgserver keeps running a server whose owning
process was killed, so `reap_stale` stops a server whose recorded users are all
dead before a new owner starts, instead of attaching to an orphan forever.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def _pid_alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def reap_stale(pgdata: Path) -> bool:
    """Stops the server under `pgdata` when no process that used it is alive.

    Returns True when a stale server was found and stopped.
    """
    handles = pgdata / ".handle_pids.json"
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    try:
        users = [int(p) for p in json.loads(handles.read_text())] if handles.exists() else []
    except (ValueError, OSError):
        users = []
    if any(_pid_alive(pid) for pid in users if pid != os.getpid()):
        return False
    try:
        postmaster = int(pid_file.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        postmaster = 0
    stopped = False
    if postmaster and psutil.pid_exists(postmaster):
        proc = psutil.Process(postmaster)
        log.warning("stopping a PostgreSQL left behind by a crashed run", extra={"pgdata": str(pgdata)})
        proc.terminate()  # SIGTERM = smart shutdown
        try:
            proc.wait(10)
        except psutil.TimeoutExpired:
            proc.kill()
        stopped = True
    pid_file.unlink(missing_ok=True)
    handles.unlink(missing_ok=True)
    return stopped


class EmbeddedPostgres:
    """Owns one pgserver instance under `pgdata`; `url` is an asyncpg-ready DSN."""

    def __init__(self, pgdata: Path, *, fresh: bool = False) -> None:
        self._pgdata = pgdata.resolve()
        self._fresh = fresh
        self._server = None

    def start(self) -> str:
        import pgserver  # imported lazily: only machines without DATABASE_URL need it

        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        reap_stale(self._pgdata)
        if self._fresh and self._pgdata.exists():
            shutil.rmtree(self._pgdata)
        self._server = pgserver.get_server(self._pgdata, cleanup_mode="stop")
        return self.url

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("EmbeddedPostgres.start() was not called")
        return self._server.get_uri()

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.cleanup()
            except (subprocess.CalledProcessError, OSError) as exc:
                log.warning("embedded PostgreSQL did not stop cleanly: %s", exc)
            self._server = None
