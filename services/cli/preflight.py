"""Before `quantmesh up` starts anything: is this machine's mesh already running?

Two questions, each answered with a sentence naming what is in the way:

- Is any address the mesh would listen on (gRPC, health, metrics, console) already taken? A
  second `up` on the same ports used to print "healthy" while every new process died on
  "address already in use"; now it stops before starting anything.
- Does another process hold the writer lease of a plane's schema on this database (a mesh on
  other ports, or a plane started by hand)? Then a second writer would only be refused later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
from collections.abc import Mapping, Sequence

import asyncpg
import psutil

from services.cli.supervisor import ProcessSpec
from services.common.lease import current_holder
from services.control.repository import SCHEMA as CONTROL_SCHEMA
from services.market_data.repository import SCHEMA as MARKET_DATA_SCHEMA
from services.order.repository import SCHEMA as ORDER_SCHEMA

#: The single-writer planes and the schema each one writes (the position plane names its own in __main__).
WRITER_SCHEMAS: Mapping[str, str] = {"control": CONTROL_SCHEMA, "market_data": MARKET_DATA_SCHEMA,
                                     "order": ORDER_SCHEMA, "position": "positions", "analysis": "analysis"}


def listen_addresses(specs: Sequence[ProcessSpec]) -> list[tuple[str, str]]:
    """(process, host:port) for every address a process of the plan binds: its gRPC address and any
    QUANTMESH_*_LISTEN it is given (health, metrics, console page)."""
    found: dict[str, str] = {}
    for spec in specs:
        for address in (spec.address, *(v for k, v in spec.env.items() if k.endswith("_LISTEN"))):
            if address and address.rpartition(":")[2].isdigit():
                found.setdefault(address, spec.name)
    return [(name, address) for address, name in found.items()]


def taken_addresses(specs: Sequence[ProcessSpec]) -> list[str]:
    """One sentence per address of the plan that something already listens on."""
    return [f"{address} ({name}) is taken by {port_holder(int(address.rpartition(':')[2]))}"
            for name, address in listen_addresses(specs) if not _bindable(address)]


def _bindable(address: str) -> bool:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gRPC binds: SO_REUSEADDR, so connections of a mesh that just stopped (TIME_WAIT) do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Who listens on `port`: pid, command, start time, and the `quantmesh up` that started it."""
    try:
        listeners = [c.pid for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid]
    except psutil.AccessDenied:
        listeners = []
    if not listeners:
        return "a process this user cannot see"
    try:
        proc = psutil.Process(listeners[0])
        text = f"pid {proc.pid} ({_command(proc)}, started {_started(proc)})"
        parent = proc.parent()
        if parent is not None and "services.cli" in " ".join(parent.cmdline()):
            text += f", run by `quantmesh up` pid {parent.pid}"
        return text
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"pid {listeners[0]}"


def _command(proc: psutil.Process) -> str:
    words = proc.cmdline()
    if "-m" in words and words.index("-m") + 1 < len(words):
        return "python -m " + " ".join(words[words.index("-m") + 1:])[:80]
    return " ".join(words)[:80] or proc.name()


def _started(proc: psutil.Process) -> str:
    return dt.datetime.fromtimestamp(proc.create_time(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def held_writer_leases(database_url: str, schemas: Mapping[str, str]) -> list[str]:
    """One sentence per plane whose writer lease another process holds on this database."""
    conn = await asyncpg.connect(database_url)
    try:
        held = []
        for plane, schema in schemas.items():
            holder = await current_holder(conn, schema)
            if holder is not None:
                held.append(f"the {plane} plane's writer lease (schema {schema}) is held by {holder.describe()}")
        return held
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


def refusal(taken: Sequence[str], *, what: str) -> str:
    lines = "\n".join(f"  - {item}" for item in taken)
    return (f"quantmesh up: refusing to start: {what}:\n{lines}\n"
            "Stop that mesh first (Ctrl-C where it runs, or kill the pids above), then run quantmesh up again.")
