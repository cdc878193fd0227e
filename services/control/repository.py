"""The control schema in PostgreSQL: flags, strategy flags and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common.db import as_columns

from services.control.state import AuditEntry, AuditQuery, FieldChange, FlagState, StrategyFlagState

SCHEMA = "control"


@dataclass(frozen=True, kw_only=True, slots=True)
class ChangeMeta:
    """Who made a change, from where, why and when: what every audit row carries."""

    actor: str
    role: str
    source: str
    reason: str
    time: datetime
    mode: str = ""
    site: str = ""
    session: str = ""


class FlagsTransaction:
    """One change inside one transaction, holding the version row locked."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def load_for_update(self) -> FlagState:
        # FOR UPDATE on the version row: a second writer (another replica, or a
        # bug that bypasses the engine's lock) waits here instead of racing.
        return await _load(self._conn, lock=True)

    async def save(self, after: FlagState, strategy: StrategyFlagState | None,
                   changes: Sequence[FieldChange], meta: ChangeMeta) -> None:
        await self._conn.execute(
            f"UPDATE {SCHEMA}.global_flags SET version = $1, global_entry_enabled = $2, "
            "global_exit_enabled = $3, global_lock = $4, updated_time = $5, lock_cancels_open_orders = $6 WHERE id = 1",
            after.version, after.global_entry_enabled, after.global_exit_enabled, after.global_lock,
            after.updated_time, after.lock_cancels_open_orders)
        if strategy is not None:
            await self._conn.execute(
                f"INSERT INTO {SCHEMA}.strategy_flags (slug, entry_enabled, exit_enabled, note, updated_time) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (slug) DO UPDATE SET entry_enabled = EXCLUDED.entry_enabled, "
                "exit_enabled = EXCLUDED.exit_enabled, note = EXCLUDED.note, updated_time = EXCLUDED.updated_time",
                strategy.slug, strategy.entry_enabled, strategy.exit_enabled, strategy.note, strategy.updated_time)
        await self._conn.executemany(
            f"INSERT INTO {SCHEMA}.audit (version, actor, role, source, reason, slug, flag, old_value, new_value, time,"
            " event, plane, mode, site, session, subject) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'flag_change', 'control', $11, $12, $13, $14)",
            [(after.version, meta.actor, meta.role, meta.source, meta.reason, c.slug, c.flag, c.old_value,
              c.new_value, meta.time, meta.mode, meta.site, meta.session, c.slug or "global") for c in changes])


class FlagsRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self) -> FlagState:
        async with self._pool.acquire() as conn:
            return await _load(conn, lock=False)

    @asynccontextmanager
    async def change(self) -> AsyncIterator[FlagsTransaction]:
        """A transaction: the flag change and its audit rows commit together or not at all."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield FlagsTransaction(conn)

    async def audit(self, query: AuditQuery) -> tuple[list[AuditEntry], bool]:
        """Entries matching `query`, newest first, and whether more remain."""
        where, args = [], []

        def arg(value) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.actor:
            where.append(f"actor = {arg(query.actor)}")
        if query.slug:
            where.append(f"slug = {arg(query.slug)}")
        if query.flag:
            where.append(f"flag = {arg(query.flag)}")
        if query.event:
            where.append(f"event = {arg(query.event)}")
        if query.plane:
            where.append(f"plane = {arg(query.plane)}")
        if query.since is not None:
            where.append(f"time >= {arg(query.since)}")
        if query.until is not None:
            where.append(f"time < {arg(query.until)}")
        if query.before_id is not None:
            where.append(f"id < {arg(query.before_id)}")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        # Writes are serialized, so id order is commit order: newest first is id DESC.
        sql = (f"SELECT id, version, actor, role, source, reason, slug, flag, old_value, new_value, time, "
               "event, plane, mode, site, session, subject "
               f"FROM {SCHEMA}.audit {clause} ORDER BY id DESC LIMIT {arg(query.limit + 1)}")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        entries = [AuditEntry(**dict(row)) for row in rows[:query.limit]]
        return entries, len(rows) > query.limit


    async def record(self, records: Sequence[dict]) -> int:
        """Stores other planes' audit records once each (by record_id); how many were new."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"INSERT INTO {SCHEMA}.audit (record_id, event, plane, mode, actor, role, site, session, source,"
                " reason, slug, subject, old_value, new_value, time, version, flag)"
                " SELECT *, 0, '' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
                " $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],"
                " $15::timestamptz[]) ON CONFLICT (record_id) DO NOTHING RETURNING id",
                *as_columns([tuple(r[k] for k in _RECORD_FIELDS) for r in records], len(_RECORD_FIELDS)))
        return len(rows)


_RECORD_FIELDS = ("record_id", "event", "plane", "mode", "actor", "role", "site", "session", "source", "reason",
                  "strategy_slug", "subject", "old_value", "new_value", "time")


async def _load(conn: asyncpg.Connection, *, lock: bool) -> FlagState:
    row = await conn.fetchrow(
        f"SELECT version, global_entry_enabled, global_exit_enabled, global_lock, updated_time, "
        "lock_cancels_open_orders "
        f"FROM {SCHEMA}.global_flags WHERE id = 1{' FOR UPDATE' if lock else ''}")
    if row is None:
        raise RuntimeError(f"{SCHEMA}.global_flags has no row: the migrations did not run")
    strategies = await conn.fetch(
        f"SELECT slug, entry_enabled, exit_enabled, note, updated_time FROM {SCHEMA}.strategy_flags ORDER BY slug")
    return FlagState(
        version=row["version"], global_entry_enabled=row["global_entry_enabled"],
        global_exit_enabled=row["global_exit_enabled"], global_lock=row["global_lock"],
        updated_time=row["updated_time"], lock_cancels_open_orders=row["lock_cancels_open_orders"],
        strategies=tuple(StrategyFlagState(**dict(s)) for s in strategies))
