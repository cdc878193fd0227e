"""One writer per plane, with real plane processes on one real database.

- A second order plane refuses to start, naming the holder (host, pid, start time), and the
  refusal is recorded.
- A holder killed with kill -9 is taken over by a restart, with no cleanup by hand, and by a
  standby that was waiting (QUANTMESH_WRITER_STANDBY=true).
- A holder that hangs (SIGSTOP: frozen, no heartbeat) loses its lease to the server; a standby
  takes over; the old holder, woken, stops itself instead of writing on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import time

import asyncpg
import psutil
import pytest

from services.common.db import create_database
from services.common.lease import EXIT_LEASE_LOST, EXIT_WRITER_HELD, lease_events
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Planes:
    """Plane processes of one module, all stopped at the end whatever happens."""

    def __init__(self, log_dir) -> None:
        self.log_dir = log_dir
        self.started: list[PlaneProcess] = []

    def start(self, module: str, env: dict[str, str]) -> tuple[PlaneProcess, str]:
        address = f"127.0.0.1:{free_port()}"
        process = PlaneProcess(module, {"QUANTMESH_LISTEN": address, "QUANTMESH_GRACE_SECONDS": "1",
                                        "QUANTMESH_TOKENS": "", **env}, self.log_dir).start()
        self.started.append(process)
        return process, address

    def stop_all(self) -> None:
        for process in self.started:
            if process.proc is not None and process.proc.poll() is None:
                os.kill(process.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            process.terminate()


@pytest.fixture
def planes(tmp_path):
    running = Planes(tmp_path)
    yield running
    running.stop_all()


def order_env(database_url: str) -> dict[str, str]:
    # Nothing listens at control or market data: the order plane starts anyway (orders are refused
    # until control answers), which is all this test needs of it.
    return {"DATABASE_URL": database_url, "QUANTMESH_POSITIONS_SOURCE": "own_book",
            "QUANTMESH_CONTROL_ADDR": f"127.0.0.1:{free_port()}",
            "QUANTMESH_MARKET_DATA_ADDR": f"127.0.0.1:{free_port()}", "QUANTMESH_INSTRUMENTS": "USD_JPY"}


def started_at(process: PlaneProcess) -> str:
    started = dt.datetime.fromtimestamp(psutil.Process(process.proc.pid).create_time(), dt.timezone.utc)
    return started.strftime("%Y-%m-%dT%H:%M:%SZ")


async def events(database_url: str, schema: str) -> list:
    conn = await asyncpg.connect(database_url)
    try:
        return await lease_events(conn, schema)
    finally:
        await conn.close()


async def test_a_second_order_plane_refuses_and_a_killed_holder_is_taken_over(database_url, planes):
    env = order_env(database_url)
    first, first_address = planes.start("services.order", env)
    await asyncio.to_thread(first.wait_healthy, first_address, 90)

    second, _ = planes.start("services.order", env)
    code = await asyncio.to_thread(second.proc.wait, 90)
    assert code == EXIT_WRITER_HELD, second.tail()
    sentence = second.tail()
    assert "refusing to start: another order process is the writer of schema orders on this database" in sentence
    assert f"host {socket.gethostname()}, pid {first.proc.pid}, started {started_at(first)}" in sentence
    recorded = await events(database_url, "orders")
    refusal = recorded[-1]
    assert (refusal.event, refusal.actor.pid, refusal.holder.pid) == ("refused", second.proc.pid, first.proc.pid)

    first.kill()  # kill -9: no release, no cleanup
    restarted, restarted_address = planes.start("services.order", env)
    await asyncio.to_thread(restarted.wait_healthy, restarted_address, 90)
    takeover = (await events(database_url, "orders"))[-1]
    assert (takeover.event, takeover.actor.pid, takeover.holder.pid) == ("taken_over", restarted.proc.pid,
                                                                        first.proc.pid)

    standby, standby_address = planes.start("services.order", {**env, "QUANTMESH_WRITER_STANDBY": "true"})
    await asyncio.to_thread(wait_for, lambda: "waiting as standby writer of schema orders" in standby.tail(), 90,
                            "the standby to say whom it waits for")
    assert f"pid {restarted.proc.pid}" in standby.tail() and standby.proc.poll() is None
    restarted.kill()
    await asyncio.to_thread(standby.wait_healthy, standby_address, 90)
    takeover = (await events(database_url, "orders"))[-1]
    assert (takeover.event, takeover.actor.pid, takeover.holder.pid) == ("taken_over", standby.proc.pid,
                                                                        restarted.proc.pid)


async def test_a_hung_holder_loses_its_lease_and_stops_itself_when_it_wakes(postgres_admin_url, planes):
    database_url = await create_database(postgres_admin_url, prefix="hung")
    env = {"DATABASE_URL": database_url, "QUANTMESH_WRITER_LEASE_SECONDS": "2", "QUANTMESH_HEARTBEAT_SECONDS": "0.5"}
    holder, holder_address = planes.start("services.control", env)
    await asyncio.to_thread(holder.wait_healthy, holder_address, 90)
    standby, standby_address = planes.start("services.control", {**env, "QUANTMESH_WRITER_STANDBY": "true"})
    await asyncio.to_thread(wait_for, lambda: "waiting as standby writer of schema control" in standby.tail(), 90,
                            "the standby to wait")

    os.kill(holder.proc.pid, signal.SIGSTOP)  # frozen: neither its heartbeat nor its watchdog runs
    await asyncio.to_thread(standby.wait_healthy, standby_address, 90)
    takeover = (await events(database_url, "control"))[-1]
    assert (takeover.event, takeover.holder.pid) == ("taken_over", holder.proc.pid)

    os.kill(holder.proc.pid, signal.SIGCONT)
    code = await asyncio.to_thread(holder.proc.wait, 60)
    assert code == EXIT_LEASE_LOST, holder.tail()
    assert "writer lease lost" in holder.tail()
    assert standby.proc.poll() is None
