"""The analysis schema in PostgreSQL (schema `analysis` only)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import asyncpg

from services.analysis.patterns import Entry
from services.analysis.ranges import MarketState, Regime
from services.analysis.signals import SignalQuery, SignalRecord
from services.analysis.trades import FillRecord
from services.common.db import as_columns, unnest_sql
from services.common.strategy_settings import Allocation, StrategySettings

SCHEMA = "analysis"

_SIGNAL_COLUMNS = ("signal_id", "strategy_slug", "role", "instrument", "action", "reason", "confidence", "indicators",
                   "params_version", "allocation_version", "size_multiplier", "decision_time", "client_order_id",
                   "side", "quantity", "price_ref", "trace_id")
_SIGNAL_TYPES = ("text", "text", "text", "text", "text", "text", "float8", "jsonb", "int8", "int8", "numeric",
                 "timestamptz", "text", "text", "numeric", "float8", "text")
_FILL_COLUMNS = ("seq", "fill_id", "client_order_id", "strategy_slug", "account", "instrument", "side", "quantity",
                 "price", "commission", "fill_time")
_FILL_TYPES = ("int8", "text", "text", "text", "text", "text", "text", "numeric", "numeric", "numeric", "timestamptz")
_STATE_COLUMNS = ("instrument", "as_of", "atr", "atr_percentile", "regime", "spread", "mid_close")
_STATE_TYPES = ("text", "timestamptz", "float8", "float8", "text", "float8", "float8")


def _insert(table: str, columns: Sequence[str], types: Sequence[str], conflict: str) -> str:
    return (f"INSERT INTO {SCHEMA}.{table} ({', '.join(columns)}) SELECT * FROM {unnest_sql(1, types)} "
            f"ON CONFLICT ({conflict}) DO NOTHING")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def settings_body(settings: StrategySettings) -> str:
    allocation = settings.allocation
    return json.dumps({
        "params": dict(settings.params), "params_version": settings.params_version,
        "allocation": {"size_multiplier": str(allocation.size_multiplier), "entries_enabled": allocation.entries_enabled,
                       "reason": allocation.reason, "judged_since": _iso(allocation.judged_since)},
        "allocation_version": settings.allocation_version, "frozen": settings.frozen,
        "updated_time": _iso(settings.updated_time),
        "updated_by": settings.updated_by, "reason": settings.reason}, sort_keys=True)


def settings_from_body(slug: str, version: int, body: str) -> StrategySettings:
    data = json.loads(body)
    allocation = data["allocation"]
    return StrategySettings(
        slug=slug, version=version, params=data["params"], params_version=data["params_version"],
        allocation=Allocation(size_multiplier=Decimal(allocation["size_multiplier"]),
                              entries_enabled=allocation["entries_enabled"], reason=allocation["reason"],
                              judged_since=_moment(allocation.get("judged_since"))),
        allocation_version=data["allocation_version"], frozen=data["frozen"],
        updated_time=_moment(data["updated_time"]),
        updated_by=data["updated_by"], reason=data["reason"])


def _signal(row: asyncpg.Record) -> SignalRecord:
    return SignalRecord(
        signal_id=row["signal_id"], strategy=row["strategy_slug"], role=row["role"], instrument=row["instrument"],
        action=row["action"], reason=row["reason"], confidence=row["confidence"],
        indicators=json.loads(row["indicators"]), params_version=row["params_version"],
        allocation_version=row["allocation_version"], size_multiplier=row["size_multiplier"],
        decision_time=row["decision_time"], client_order_id=row["client_order_id"], side=row["side"],
        quantity=row["quantity"], price_ref=row["price_ref"], trace_id=row["trace_id"], seq=row["seq"],
        recorded_time=row["recorded_time"])


class AnalysisRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # ---- signals ----------------------------------------------------------------------------

    async def record_signals(self, signals: Sequence[SignalRecord]) -> int:
        """Stores the signals not stored before (by signal_id); returns how many were new."""
        rows = [(s.signal_id, s.strategy, s.role, s.instrument, s.action, s.reason, s.confidence,
                 json.dumps(dict(s.indicators)), s.params_version, s.allocation_version, s.size_multiplier,
                 s.decision_time, s.client_order_id, s.side, s.quantity, s.price_ref, s.trace_id) for s in signals]
        async with self._pool.acquire() as conn:
            status = await conn.execute(_insert("signals", _SIGNAL_COLUMNS, _SIGNAL_TYPES, "signal_id"),
                                        *as_columns(rows, len(_SIGNAL_COLUMNS)))
        return int(status.rsplit(" ", 1)[-1])

    async def prune_holds(self, recorded_before: datetime) -> int:
        """Deletes hold and skip signals recorded before `recorded_before`; returns how many.

        By recorded (wall-clock) time, not decision time: a replay's decisions carry the data's
        time, years back, and must not vanish the moment they are stored."""
        async with self._pool.acquire() as conn:
            status = await conn.execute(
                f"DELETE FROM {SCHEMA}.signals WHERE action IN ('hold', 'skip') AND recorded_time < $1",
                recorded_before)
        return int(status.rsplit(" ", 1)[-1])

    async def signals(self, query: SignalQuery) -> list[SignalRecord]:
        """Newest first; one more than `query.limit` when there are more (the caller pages)."""
        where, args = [], []

        def bind(condition: str, value) -> None:
            args.append(value)
            where.append(condition.format(f"${len(args)}"))

        if query.strategy:
            bind("strategy_slug = {}", query.strategy)
        if query.instrument:
            bind("instrument = {}", query.instrument)
        if query.actions:
            bind("action = ANY({}::text[])", list(query.actions))
        if query.since is not None:
            bind("decision_time >= {}", query.since)
        if query.until is not None:
            bind("decision_time < {}", query.until)
        if query.client_order_id:
            bind("client_order_id = {}", query.client_order_id)
        if query.before_seq is not None:
            bind("seq < {}", query.before_seq)
        args.append(query.limit + 1)
        columns = ", ".join(c for c in _SIGNAL_COLUMNS if c != "indicators")
        sql = (f"SELECT seq, recorded_time, indicators::text AS indicators, {columns} FROM {SCHEMA}.signals"
               f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY seq DESC LIMIT ${len(args)}")
        async with self._pool.acquire() as conn:
            return [_signal(r) for r in await conn.fetch(sql, *args)]

    async def entries(self, strategy: str, instrument: str, limit: int) -> list[Entry]:
        """The latest ENTRY signals, each with the regime of its instrument as of its decision."""
        sql = f"""
            SELECT s.strategy_slug, s.instrument, s.side, s.decision_time, s.confidence, s.indicators::text AS indicators,
                   s.client_order_id, coalesce(m.regime, 'unknown') AS regime
            FROM {SCHEMA}.signals s
            LEFT JOIN LATERAL (SELECT regime FROM {SCHEMA}.market_states m
                               WHERE m.instrument = s.instrument AND m.as_of <= s.decision_time
                               ORDER BY m.as_of DESC LIMIT 1) m ON true
            WHERE s.action = 'entry' AND ($1 = '' OR s.strategy_slug = $1) AND ($2 = '' OR s.instrument = $2)
            ORDER BY s.seq DESC LIMIT $3"""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, strategy, instrument, limit)
        return [Entry(strategy=r["strategy_slug"], instrument=r["instrument"], side=r["side"],
                      decision_time=r["decision_time"], confidence=r["confidence"],
                      indicators=json.loads(r["indicators"]), client_order_id=r["client_order_id"],
                      regime=Regime(r["regime"])) for r in rows]

    # ---- fills and market states ------------------------------------------------------------

    async def record_fills(self, fills: Sequence[FillRecord]) -> None:
        rows = [(f.seq, f.fill_id, f.client_order_id, f.strategy, f.account, f.instrument, f.side, f.quantity, f.price,
                 f.commission, f.time) for f in fills]
        async with self._pool.acquire() as conn:
            await conn.execute(_insert("fills", _FILL_COLUMNS, _FILL_TYPES, "seq"), *as_columns(rows, len(_FILL_COLUMNS)))

    async def fills(self) -> list[FillRecord]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT * FROM {SCHEMA}.fills ORDER BY seq")
        return [FillRecord(seq=r["seq"], fill_id=r["fill_id"], client_order_id=r["client_order_id"],
                           strategy=r["strategy_slug"], account=r["account"], instrument=r["instrument"],
                           side=r["side"], quantity=r["quantity"], price=r["price"], commission=r["commission"],
                           time=r["fill_time"]) for r in rows]

    async def record_states(self, states: Sequence[MarketState]) -> None:
        rows = [(s.instrument, s.as_of, s.atr, s.atr_percentile, str(s.regime), s.spread, s.close) for s in states]
        async with self._pool.acquire() as conn:
            await conn.execute(_insert("market_states", _STATE_COLUMNS, _STATE_TYPES, "instrument, as_of"),
                               *as_columns(rows, len(_STATE_COLUMNS)))

    # ---- settings -----------------------------------------------------------------------------

    async def settings(self) -> list[StrategySettings]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT strategy_slug, version, body::text AS body FROM {SCHEMA}.strategy_settings")
        return [settings_from_body(r["strategy_slug"], r["version"], r["body"]) for r in rows]

    async def store_settings(self, before: StrategySettings, after: StrategySettings,
                             audit_row: tuple[str, str]) -> None:
        """The new version, its history row and its audit record, in one transaction; a version row
        that is no longer `before` (another writer) fails the whole change."""
        body = settings_body(after)
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                f"INSERT INTO {SCHEMA}.strategy_settings AS s (strategy_slug, version, body) VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (strategy_slug) DO UPDATE SET version = EXCLUDED.version, body = EXCLUDED.body "
                "WHERE s.version = $4 RETURNING version", after.slug, after.version, body, before.version)
            if stored is None:
                raise RuntimeError(f"the settings of {after.slug!r} changed under this writer (expected version "
                                   f"{before.version}); is a second analysis process writing this schema?")
            await conn.execute(f"INSERT INTO {SCHEMA}.settings_history (strategy_slug, version, body) "
                               "VALUES ($1, $2, $3::jsonb)", after.slug, after.version, body)
            await conn.execute(f"INSERT INTO {SCHEMA}.audit_outbox (record_id, body) VALUES ($1, $2::jsonb)",
                               *audit_row)

    async def settings_history(self, slug: str) -> list[StrategySettings]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"SELECT version, body::text AS body FROM {SCHEMA}.settings_history "
                                    "WHERE strategy_slug = $1 ORDER BY version", slug)
        return [settings_from_body(slug, r["version"], r["body"]) for r in rows]


__all__ = ["AnalysisRepository", "SCHEMA", "settings_body", "settings_from_body"]
