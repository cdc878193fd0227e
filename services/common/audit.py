"""One audit trail for money-moving actions, kept by the control plane, fed by every plane.

A plane records an action (a refusal, a cancel, a flatten, a reconciliation decision, a
lease takeover, ...) into an outbox table in its own schema (`<schema>.audit_outbox`, which
the plane's migrations create: see services/order/migrations/0005_audit_outbox.sql): one
insert, durable with the plane's own data, and for the order plane in the same statement as
the order it concerns.
A forwarder task sends what the outbox holds to `Control.RecordAudit` and deletes what
control confirmed. Control keeps each record once (by record_id), so a record sent again
after a crash is not doubled, and a record written while control is down is sent when it
is back. Query the trail with `Control.ListAudit` or `quantmesh audit`.

Every record says who (actor, role), when, where (plane, site = host, session = the
process's start id), in which mode (live, paper, backtest), what (event, subject,
strategy), why (reason) and the before and after values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import asyncpg
import grpc

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from services.common.channels import open_channel
from services.common.config import ConfigError, Env
from services.common.timeutil import to_timestamp

log = logging.getLogger(__name__)

MODES = ("live", "paper", "backtest")
_BATCH = 500


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditIdentity:
    """Where a plane's records come from: the same on every record of one process."""

    plane: str
    mode: str
    site: str
    session: str

    @classmethod
    def from_env(cls, env: Env, plane: str) -> "AuditIdentity":
        mode = env.str("QUANTMESH_MODE", "paper")
        if mode not in MODES:
            raise ConfigError(f"QUANTMESH_MODE={mode!r} is not one of {', '.join(MODES)} (what kind of money "
                              "this mesh moves; it is written on every audit record)")
        return cls(plane=plane, mode=mode, site=socket.gethostname(), session=uuid.uuid4().hex[:12])


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRecord:
    event: str
    actor: str
    role: str = ""
    reason: str = ""
    strategy_slug: str = ""
    subject: str = ""
    old_value: str = ""
    new_value: str = ""
    source: str = ""
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    record_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self, identity: AuditIdentity) -> str:
        body = {**asdict(self), **asdict(identity), "time": self.time.isoformat()}
        return json.dumps(body)


def record_to_proto(body: dict) -> control_pb2.AuditRecord:
    return control_pb2.AuditRecord(
        record_id=body["record_id"], event=body["event"], plane=body["plane"], mode=body["mode"],
        actor=body["actor"], role=body["role"], site=body["site"], session=body["session"],
        source=body.get("source", ""), reason=body["reason"], strategy_slug=body["strategy_slug"],
        subject=body["subject"], old_value=body["old_value"], new_value=body["new_value"],
        time=to_timestamp(datetime.fromisoformat(body["time"])))


class AuditOutbox:
    """Records into `<schema>.audit_outbox`, forwards to control in the background."""

    def __init__(self, pool: asyncpg.Pool, schema: str, identity: AuditIdentity, control_address: str, *,
                 token: str | None = None, retry_seconds: float = 1.0) -> None:
        self._pool = pool
        self._schema = schema
        self.identity = identity
        self._control = control_address
        self._token = token
        self._retry = retry_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.forwarded = 0

    @classmethod
    async def open(cls, pool: asyncpg.Pool, schema: str, identity: AuditIdentity, control_address: str,
                   **options) -> "AuditOutbox":
        outbox = cls(pool, schema, identity, control_address, **options)
        outbox._task = asyncio.create_task(outbox._forward(), name=f"audit-outbox {schema}")
        return outbox

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def row(self, record: AuditRecord) -> tuple[str, str]:
        """(record_id, body) for a writer that stores the record in its own statement (the journal)."""
        return record.record_id, record.to_json(self.identity)

    async def record(self, record: AuditRecord) -> None:
        """Stores the record durably; it reaches control as soon as control answers."""
        async with self._pool.acquire() as conn:
            await conn.execute(f"INSERT INTO {self._schema}.audit_outbox (record_id, body) VALUES ($1, $2::jsonb)"
                               " ON CONFLICT DO NOTHING", *self.row(record))
        self.stored()

    def stored(self) -> None:
        """Wakes the forwarder (a writer that stored records itself calls this after its commit)."""
        self._wake.set()

    async def _forward(self) -> None:
        while True:
            try:
                sent = await self._forward_once()
            except (grpc.RpcError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("audit records wait in the outbox: control or the database did not answer",
                            extra={"schema": self._schema, "error": str(exc)[:300]})
                await asyncio.sleep(self._retry)
                continue
            if sent == 0:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=5.0)

    async def _forward_once(self) -> int:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT record_id, body::text AS body FROM {self._schema}.audit_outbox"
                                    f" ORDER BY created, record_id LIMIT {_BATCH}")
        if not rows:
            return 0
        request = control_pb2.RecordAuditRequest(records=[record_to_proto(json.loads(r["body"])) for r in rows])
        async with open_channel(self._control, token=self._token, traced=False) as channel:
            await control_pb2_grpc.ControlStub(channel).RecordAudit(request, timeout=10)
        async with self._pool.acquire() as conn:
            await conn.execute(f"DELETE FROM {self._schema}.audit_outbox WHERE record_id = ANY($1::text[])",
                               [r["record_id"] for r in rows])
        self.forwarded += len(rows)
        return len(rows)


class MemoryAudit:
    """The same interface with nothing durable: a backtest, a unit test (records kept in a list)."""

    def __init__(self, identity: AuditIdentity | None = None) -> None:
        self.identity = identity or AuditIdentity(plane="backtest", mode="backtest", site="", session="")
        self.records: list[AuditRecord] = []

    def row(self, record: AuditRecord) -> tuple[str, str]:
        return record.record_id, record.to_json(self.identity)

    async def record(self, record: AuditRecord) -> None:
        self.records.append(record)

    def stored(self) -> None:
        pass


__all__ = ["AuditIdentity", "AuditRecord", "AuditOutbox", "MemoryAudit", "MODES"]
