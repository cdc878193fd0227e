"""`quantmesh up` started twice: the second stops before starting anything, says what is in the
way, and exits non-zero, leaving the first mesh untouched. And `up` against a database whose
planes another process already writes refuses in the same way, naming the holder."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys

import pytest

from services.common.config import WriterLeaseSettings
from services.common.db import create_database
from services.common.lease import WriterIdentity, WriterLease
from tests.e2e.test_up_command import plane_process, wait_for
from tests.support.postgres import PROJECT_ROOT

pytestmark = pytest.mark.e2e


def up(data_dir, *extra: str, env=None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir),
                             "--strategies", "ma_cross", "--speed", "120x", *extra],
                            cwd=PROJECT_ROOT, env=env or {k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
                            **popen)


def test_up_twice_on_the_same_ports_fails_with_a_sentence(tmp_path):
    data_dir = tmp_path / "qm"
    log_path = tmp_path / "first.out"
    with log_path.open("w") as out:
        first = up(data_dir, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "quantmesh is up." in log_path.read_text(), 180, "the first mesh")
        control = plane_process("services.control", data_dir)
        second = subprocess.run([sys.executable, "-m", "services.cli", "up", "--data-dir", str(data_dir),
                                 "--strategies", "ma_cross"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=120, env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
        said = second.stdout + second.stderr
        assert second.returncode == 1, said
        assert "quantmesh up: refusing to start: something already listens where this mesh would" in said
        assert f"127.0.0.1:50052 (control) is taken by pid {control.pid} (python -m services.control" in said
        assert f"run by `quantmesh up` pid {first.pid}" in said
        assert "healthy" not in said and "quantmesh is up." not in said
        # The first mesh never noticed.
        assert first.poll() is None and control.is_running()
        status = subprocess.run([sys.executable, "-m", "services.cli", "status", "--data-dir", str(data_dir)],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout
    finally:
        first.send_signal(signal.SIGINT)
        code = first.wait(90)
    assert code == 0, log_path.read_text()[-3000:]
    assert "restart #" not in log_path.read_text()


async def test_up_refuses_a_database_whose_planes_another_process_writes(postgres_admin_url, tmp_path):
    database_url = await create_database(postgres_admin_url, prefix="up_held")
    me = WriterIdentity(plane="order", host=socket.gethostname(), pid=os.getpid(), session="by-hand",
                        started_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc))
    held = await WriterLease.acquire(database_url, identity=me, schema="orders", settings=WriterLeaseSettings())
    try:
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "up", "--data-dir", str(tmp_path / "qm"), "--strategies", "ma_cross",
            cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": database_url},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(second.communicate(), 120)
        said = out.decode()
        assert second.returncode == 1, said
        assert "quantmesh up: refusing to start: another process already writes this database" in said
        assert (f"the order plane's writer lease (schema orders) is held by host {socket.gethostname()}, "
                f"pid {os.getpid()}, started 2026-01-05T09:00:00Z") in said
        assert "starting control" not in said
    finally:
        await held.release()
