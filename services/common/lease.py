"""One writer per plane: a writer lease held in PostgreSQL.

The order, position, control and market_data planes each write their own schema and must be
its only writer. Before it writes, such a plane takes its schema's writer lease: a PostgreSQL
session advisory lock held on a connection of its own.

- A second process on the same database finds the lease taken and refuses to start, with a
  sentence naming the holder (host, pid, start time), or with QUANTMESH_WRITER_STANDBY=true waits
  as a standby and takes over when the holder goes.
- A holder that dies (crash, kill -9, pod deleted) loses its session, and PostgreSQL frees the lock
  at once: the standby, or the same plane restarted, takes over without anybody cleaning up.
- A holder that hangs or is cut off from the database (network partition, frozen VM) stops
  heartbeating; the server ends its session after QUANTMESH_WRITER_LEASE_SECONDS
  (idle_session_timeout on the lease connection) and frees the lock. The holder itself stops
  earlier, after two thirds of that time without a confirmed heartbeat (a watchdog thread, which
  runs even while the event loop is blocked): so the old writer is gone before a new one starts.
  A holder that loses its lease connection stops at once: its lock is gone with the session.
- Every acquisition, takeover, refusal, standby, release and loss is a row of
  `<schema>.writer_lease_events` and a log line; `lease_events()` reads them for the audit trail.

What it does not do: fence writes already sent by a holder that is about to stop. Closing that
gap needs the lease `epoch` checked inside the writers' own transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import psutil

from services.common.config import WriterLeaseSettings

log = logging.getLogger(__name__)

#: Exit codes of a plane process, for supervisors and people reading `echo $?`.
EXIT_WRITER_HELD = 3
EXIT_LEASE_LOST = 4

#: First key of every writer lease (two-key advisory locks; the migration lock uses the one-key form).
_LEASE_CLASS = 0x716D_7772  # "qmwr"

#: What `<schema>.writer_lease_events` records. A loss is only logged: the process that lost its
#: lease stops at once, and the next holder records the takeover.
EVENTS = ("acquired", "taken_over", "refused", "standby", "released")


@dataclass(frozen=True, kw_only=True, slots=True)
class WriterIdentity:
    """Who a writer is: enough for a person to find the process, and a session id unique per start."""

    plane: str
    host: str
    pid: int
    started_at: dt.datetime
    session: str

    @classmethod
    def of_this_process(cls, plane: str) -> "WriterIdentity":
        started = dt.datetime.fromtimestamp(psutil.Process().create_time(), dt.timezone.utc)
        return cls(plane=plane, host=socket.gethostname(), pid=os.getpid(), started_at=started.replace(microsecond=0),
                   session=secrets.token_hex(8))

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {_when(self.started_at)}"


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseHolder:
    """The process holding a lease, as another process sees it."""

    identity: WriterIdentity | None  # None when the holder has not written its row yet
    since: dt.datetime | None
    heartbeat_at: dt.datetime | None
    backend: str  # what PostgreSQL knows of the session: client address, application name, start

    def describe(self) -> str:
        if self.identity is None:
            return f"a session not yet identified ({self.backend})"
        text = self.identity.describe()
        if self.since is not None:
            text += f", writer since {_when(self.since)}"
        if self.heartbeat_at is not None:
            text += f", last heartbeat {_when(self.heartbeat_at)}"
        return text


@dataclass(frozen=True, kw_only=True, slots=True)
class LeaseEvent:
    """One recorded fact about a writer lease: the process it is about, and the other side."""

    id: int
    at: dt.datetime
    plane: str
    schema: str
    event: str  # one of EVENTS
    actor: WriterIdentity
    holder: WriterIdentity | None  # before: the holder refused against, waited for or taken over from
    reason: str


class WriterHeld(RuntimeError):
    """Another process holds the lease; the message names it."""

    def __init__(self, message: str, holder: LeaseHolder | None) -> None:
        super().__init__(message)
        self.holder = holder


OnEvent = Callable[[LeaseEvent], Awaitable[None]]
OnLost = Callable[[str], None]


def fail_stop(reason: str) -> None:
    """A writer that lost its lease stops at once, writes in flight or not: a standby may already
    be writing, and a second writer is worse than a crash (the supervisor restarts us as a contender)."""
    log.critical("writer lease lost: %s; stopping now", reason)
    print(f"writer lease lost: {reason}; stopping now", file=sys.stderr, flush=True)
    os._exit(EXIT_LEASE_LOST)


def lease_key(schema: str) -> tuple[int, int]:
    """The advisory lock of `schema`'s writer: two positive int4s, so pg_locks shows them as they are."""
    digest = hashlib.sha256(f"quantmesh.writer:{schema}".encode()).digest()
    return _LEASE_CLASS, int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF


async def hold_writer_lease(url: str, *, plane: str, schema: str, settings: WriterLeaseSettings,
                            on_event: OnEvent | None = None) -> "WriterLease":
    """What a plane's __main__ calls before it writes: the lease, or the process stops with a sentence.

    The lease lives as long as the process: it is released when the event loop ends (after the
    plane's own shutdown), and freed by PostgreSQL if the process dies."""
    try:
        return await WriterLease.acquire(url, identity=WriterIdentity.of_this_process(plane), schema=schema,
                                         settings=settings, on_event=on_event)
    except WriterHeld as exc:
        log.error("%s", exc, extra={"schema": schema})
        print(f"{plane}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_WRITER_HELD) from None


class WriterLease:
    """The writer lease of one schema, held by this process."""

    def __init__(self, conn: asyncpg.Connection, *, identity: WriterIdentity, schema: str,
                 settings: WriterLeaseSettings, on_event: OnEvent | None, on_lost: OnLost) -> None:
        self._conn = conn
        self.identity = identity
        self.schema = schema
        self._settings = settings
        self._on_event = on_event
        self._on_lost = on_lost
        self._key = lease_key(schema)
        self._confirmed_at = time.monotonic()  # when the last confirmed heartbeat was *sent*
        self._stopping = threading.Event()
        self._lost = False
        self._heartbeat: asyncio.Task | None = None
        self._inflight: asyncio.Future | None = None
        self._watchdog: threading.Thread | None = None
        #: Goes up by one at every acquisition: the fencing token a writer's transactions could check.
        self.epoch = 0

    # ---- taking the lease -------------------------------------------------------------------

    @classmethod
    async def acquire(cls, url: str, *, identity: WriterIdentity, schema: str, settings: WriterLeaseSettings,
                      on_event: OnEvent | None = None, on_lost: OnLost = fail_stop) -> "WriterLease":
        """Takes the lease, or raises WriterHeld; as a standby (settings.standby) waits for it instead."""
        conn = await _connect(url, identity, settings)
        try:
            await _ensure_tables(conn, schema)
            lease = cls(conn, identity=identity, schema=schema, settings=settings, on_event=on_event,
                        on_lost=on_lost)
            waited_for: WriterIdentity | None = None
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lease._key):
                holder = await current_holder(conn, schema)
                who = holder.describe() if holder else "a process that has just let go"
                if not settings.standby:
                    message = (f"refusing to start: another {identity.plane} process is the writer of schema "
                               f"{schema} on this database ({who}). Stop it first, or set "
                               f"QUANTMESH_WRITER_STANDBY=true to wait as its standby.")
                    await lease._record("refused", holder.identity if holder else None, message)
                    raise WriterHeld(message, holder)
                if holder is not None and holder.identity is not None and holder.identity != waited_for:
                    waited_for = holder.identity  # recorded once per holder, not once per poll
                    await lease._record("standby", waited_for,
                                        f"waiting as standby writer of schema {schema} behind {who}")
                await asyncio.sleep(min(0.5, settings.heartbeat_seconds))
            await lease._take_row(waited_for)
        except BaseException:
            await _close_quietly(conn)
            raise
        lease._start_keeping()
        return lease

    async def _take_row(self, waited_for: WriterIdentity | None) -> None:
        schema, me = self.schema, self.identity
        previous = await self._conn.fetchrow(f"SELECT * FROM {schema}.writer_lease WHERE plane = $1", me.plane)
        before = _identity_of(previous) if previous is not None else waited_for
        died = previous is not None and previous["released_at"] is None
        self.epoch = await self._conn.fetchval(
            f"INSERT INTO {schema}.writer_lease AS l (plane, host, pid, started_at, session, backend_pid, acquired_at,"
            " heartbeat_at, released_at, epoch) VALUES ($1, $2, $3, $4, $5, pg_backend_pid(), now(), now(), NULL, 1)"
            " ON CONFLICT (plane) DO UPDATE SET host = $2, pid = $3, started_at = $4, session = $5,"
            " backend_pid = pg_backend_pid(), acquired_at = now(), heartbeat_at = now(), released_at = NULL,"
            " epoch = l.epoch + 1 RETURNING epoch", me.plane, me.host, me.pid, me.started_at, me.session)
        if died:
            await self._record("taken_over", before, f"took over schema {schema}: the writer before "
                               f"({before.describe()}) ended without releasing it (it died or lost its connection)")
        else:
            await self._record("acquired", before, f"writer of schema {schema}")

    # ---- keeping it -------------------------------------------------------------------------

    def _start_keeping(self) -> None:
        self._confirmed_at = time.monotonic()
        self._heartbeat = asyncio.get_running_loop().create_task(self._keep(), name=f"writer-lease-{self.schema}")
        # A thread, not a task: it must act while the event loop is blocked (a hung holder).
        self._watchdog = threading.Thread(target=self._watch, name=f"writer-lease-watchdog-{self.schema}", daemon=True)
        self._watchdog.start()

    async def _keep(self) -> None:
        try:
            while not self._stopping.is_set():
                await asyncio.sleep(self._settings.heartbeat_seconds)
                sent = time.monotonic()
                # Shielded: a cancel (the loop ending) never interrupts a query halfway through.
                self._inflight = asyncio.ensure_future(self._conn.fetchval(
                    f"UPDATE {self.schema}.writer_lease SET heartbeat_at = now() WHERE plane = $1 AND session = $2"
                    " AND backend_pid = pg_backend_pid() RETURNING true", self.identity.plane,
                    self.identity.session, timeout=self._settings.heartbeat_seconds))
                try:
                    still_ours = await asyncio.shield(self._inflight)
                except (asyncio.TimeoutError, TimeoutError):
                    continue  # unconfirmed: the watchdog stops us if it stays that way
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    # The session is gone, and the lock with it: a standby may hold it already.
                    self._lose(f"the lease connection failed ({type(exc).__name__}: {exc})")
                    return
                if not still_ours:
                    self._lose("the lease row names another writer")
                    return
                self._confirmed_at = sent
        except asyncio.CancelledError:
            if not self._stopping.is_set():
                # Not release(): the event loop is ending, after the plane's own shutdown. Hand on cleanly.
                self._stopping.set()
                await self._hand_on()
            raise

    def _watch(self) -> None:
        while not self._stopping.wait(min(0.5, self._settings.heartbeat_seconds)):
            silent = time.monotonic() - self._confirmed_at
            if silent > self._settings.fence_seconds:
                self._lose(f"no heartbeat confirmed for {silent:.1f} s (the database is unreachable or this "
                           f"process hung); PostgreSQL frees the lease after {self._settings.lease_seconds:g} s")
                return

    def _lose(self, reason: str) -> None:
        if self._lost or self._stopping.is_set():
            return
        self._lost = True
        self._stopping.set()
        self._on_lost(f"{self.identity.plane} writer of schema {self.schema}: {reason}")

    @property
    def lost(self) -> bool:
        return self._lost

    async def release(self) -> None:
        """Hands the lease on: the row says released (the next holder is not a takeover), then unlock."""
        self._stopping.set()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self._hand_on()

    async def _hand_on(self) -> None:
        if self._inflight is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._inflight
        if not self._lost and not self._conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError):
                await self._conn.execute(f"UPDATE {self.schema}.writer_lease SET released_at = now()"
                                         " WHERE plane = $1 AND session = $2", self.identity.plane,
                                         self.identity.session, timeout=5)
                await self._record("released", None, f"released schema {self.schema}")
                await self._conn.execute("SELECT pg_advisory_unlock($1, $2)", *self._key, timeout=5)
        await _close_quietly(self._conn)

    # ---- recording ----------------------------------------------------------------------------

    async def _record(self, event: str, holder: WriterIdentity | None, reason: str) -> None:
        me = self.identity
        row = await self._conn.fetchrow(
            f"INSERT INTO {self.schema}.writer_lease_events (plane, event, host, pid, started_at, session,"
            " holder_host, holder_pid, holder_started_at, holder_session, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id, at",
            me.plane, event, me.host, me.pid, me.started_at, me.session,
            holder.host if holder else None, holder.pid if holder else None,
            holder.started_at if holder else None, holder.session if holder else None, reason)
        level = logging.WARNING if event in ("refused", "taken_over", "lost") else logging.INFO
        log.log(level, "writer lease %s: %s", event, reason, extra={
            "lease_event": event, "schema": self.schema, "session": me.session,
            "holder": holder.describe() if holder else None})
        if self._on_event is not None:
            await self._on_event(LeaseEvent(id=row["id"], at=row["at"], plane=me.plane, schema=self.schema,
                                            event=event, actor=me, holder=holder, reason=reason))


# ---- reading (other processes, `quantmesh up`, the audit trail) --------------------------------

async def current_holder(conn: asyncpg.Connection, schema: str) -> LeaseHolder | None:
    """Who holds `schema`'s writer lease on this database now, or None."""
    classid, objid = lease_key(schema)
    backend = await conn.fetchrow(
        "SELECT a.pid, a.application_name, host(a.client_addr) AS client, a.backend_start FROM pg_locks l"
        " JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int8::oid AND l.objid = $2::int8::oid"
        " AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        classid, objid)
    if backend is None:
        return None
    row = None
    with contextlib.suppress(asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        row = await conn.fetchrow(f"SELECT * FROM {schema}.writer_lease WHERE backend_pid = $1", backend["pid"])
    connected = _when(backend["backend_start"]) if backend["backend_start"] else "at a time not shown to us"
    description = (f"PostgreSQL session {backend['pid']}: {backend['application_name'] or 'unnamed'} from "
                   f"{backend['client'] or 'a local socket'}, connected {connected}")
    if row is None:
        return LeaseHolder(identity=None, since=None, heartbeat_at=None, backend=description)
    return LeaseHolder(identity=_identity_of(row), since=row["acquired_at"], heartbeat_at=row["heartbeat_at"],
                       backend=description)


async def lease_events(conn: asyncpg.Connection, schema: str, *, after_id: int = 0,
                       limit: int = 1000) -> list[LeaseEvent]:
    """The recorded lease events of `schema` after `after_id`, oldest first (for the audit trail)."""
    try:
        rows = await conn.fetch(f"SELECT * FROM {schema}.writer_lease_events WHERE id > $1 ORDER BY id LIMIT $2",
                                after_id, limit)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return []
    return [LeaseEvent(id=r["id"], at=r["at"], plane=r["plane"], schema=schema, event=r["event"],
                       actor=WriterIdentity(plane=r["plane"], host=r["host"], pid=r["pid"],
                                            started_at=r["started_at"], session=r["session"]),
                       holder=None if r["holder_session"] is None else WriterIdentity(
                           plane=r["plane"], host=r["holder_host"], pid=r["holder_pid"],
                           started_at=r["holder_started_at"], session=r["holder_session"]),
                       reason=r["reason"]) for r in rows]


# ---- plumbing --------------------------------------------------------------------------------

async def _connect(url: str, identity: WriterIdentity, settings: WriterLeaseSettings) -> asyncpg.Connection:
    name = f"quantmesh {identity.plane} writer {identity.host}:{identity.pid}"[:63]
    # The server ends a session silent for longer than the lease (PostgreSQL >= 14): that frees the
    # lock of a holder that hung or was cut off, whatever TCP thinks of the connection.
    timeout_ms = str(int(settings.lease_seconds * 1000))
    try:
        return await asyncpg.connect(url, server_settings={"application_name": name,
                                                           "idle_session_timeout": timeout_ms})
    except asyncpg.UndefinedObjectError:  # unrecognized configuration parameter: PostgreSQL < 14
        log.warning("this PostgreSQL has no idle_session_timeout: a hung writer keeps its lease until its "
                    "connection drops (its own watchdog still stops it)")
        return await asyncpg.connect(url, server_settings={"application_name": name})


async def _ensure_tables(conn: asyncpg.Connection, schema: str) -> None:
    async with conn.transaction():
        # Two contenders creating the tables at once would collide in the catalog: one at a time.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"quantmesh:writer-lease-ddl:{schema}")
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.writer_lease ("
            " plane text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL, started_at timestamptz NOT NULL,"
            " session text NOT NULL, backend_pid integer NOT NULL, acquired_at timestamptz NOT NULL,"
            " heartbeat_at timestamptz NOT NULL, released_at timestamptz, epoch bigint NOT NULL)")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.writer_lease_events ("
            " id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), plane text NOT NULL,"
            " event text NOT NULL, host text NOT NULL, pid integer NOT NULL, started_at timestamptz NOT NULL,"
            " session text NOT NULL, holder_host text, holder_pid integer, holder_started_at timestamptz,"
            " holder_session text, reason text NOT NULL)")


def _identity_of(row) -> WriterIdentity:
    return WriterIdentity(plane=row["plane"], host=row["host"], pid=row["pid"], started_at=row["started_at"],
                          session=row["session"])


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _close_quietly(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), 5)
