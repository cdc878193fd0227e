"""PostgreSQL storage of closed candles and factor sets (schema `market_data`), with their seqs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from quantmesh.common.v1 import common_pb2
from services.market_data.candles import Candle, Ohlc
from services.market_data.events import CandleEvent, FactorEvent
from services.market_data.instruments import Timeframe

SCHEMA = "market_data"

_CANDLE_COLUMNS = ("seq, instrument, timeframe, start_time, end_time, bid_open, bid_high, bid_low, bid_close, "
                   "ask_open, ask_high, ask_low, ask_close, mid_open, mid_high, mid_low, mid_close, "
                   "tick_count, volume, traceparent, tracestate, closed_time, exact_volume")


_CANDLE_TYPES = ("bigint", "text", "text", "timestamptz", "timestamptz", *["float8"] * 12, "bigint", "float8", "text",
                 "text", "timestamptz", "numeric")
_FACTOR_TYPES = ("bigint", "text", "text", "timestamptz", "text", "text", "text")


def _unnest(types: tuple[str, ...], first: int) -> str:
    return "unnest(" + ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(types)) + ")"


# One statement, so one round trip per batch (the streams wait for it: see recorder.py), and
# atomic without an explicit transaction: both inserts happen, or neither.
_STORE = (f"WITH stored_candles AS (INSERT INTO {SCHEMA}.candles ({_CANDLE_COLUMNS}) "
          f"SELECT * FROM {_unnest(_CANDLE_TYPES, 1)} ON CONFLICT DO NOTHING) "
          f"INSERT INTO {SCHEMA}.factor_sets (seq, instrument, timeframe, candle_start_time, factor_values, traceparent, "
          f"tracestate) SELECT seq, instrument, timeframe, start, factor_values::jsonb, traceparent, tracestate FROM "
          f"{_unnest(_FACTOR_TYPES, 1 + len(_CANDLE_TYPES))} "
          "AS f(seq, instrument, timeframe, start, factor_values, traceparent, tracestate) ON CONFLICT DO NOTHING")


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def _candle_row(seq: int, event: CandleEvent) -> tuple:
    c, tc = event.candle, event.trace_context
    return (seq, c.instrument, c.timeframe.name, c.start, c.end, c.bid.open, c.bid.high, c.bid.low, c.bid.close,
            c.ask.open, c.ask.high, c.ask.low, c.ask.close, c.mid.open, c.mid.high, c.mid.low, c.mid.close,
            c.tick_count, c.volume, tc.traceparent, tc.tracestate, c.closed_time, c.exact_volume)


def _candle(r: asyncpg.Record) -> Candle:
    return Candle(r["instrument"], Timeframe[r["timeframe"]], r["start_time"], r["end_time"],
                  Ohlc(r["bid_open"], r["bid_high"], r["bid_low"], r["bid_close"]),
                  Ohlc(r["ask_open"], r["ask_high"], r["ask_low"], r["ask_close"]),
                  Ohlc(r["mid_open"], r["mid_high"], r["mid_low"], r["mid_close"]),
                  r["tick_count"], r["volume"], True, r["closed_time"], r["exact_volume"])


def _trace(r: asyncpg.Record) -> common_pb2.TraceContext:
    return common_pb2.TraceContext(traceparent=r["traceparent"], tracestate=r["tracestate"])


@dataclass(frozen=True, slots=True)
class PageQuery:
    instrument: str
    timeframe: Timeframe
    start: datetime | None       # inclusive
    end: datetime | None         # exclusive
    limit: int
    latest: bool                 # newest `limit` in range (pages then walk backwards in time)


class MarketDataRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def store(self, candles: Sequence[tuple[int, CandleEvent]], factors: Sequence[tuple[int, FactorEvent]]) -> None:
        """Stores a batch atomically; a candle or factor set already stored is left as it is."""
        factor_rows = [(seq, e.instrument, e.timeframe.name, e.candle_start, json.dumps(e.values),
                        e.trace_context.traceparent, e.trace_context.tracestate) for seq, e in factors]
        await self._pool.execute(_STORE, *_columns([_candle_row(seq, e) for seq, e in candles], len(_CANDLE_TYPES)),
                                 *_columns(factor_rows, len(_FACTOR_TYPES)))

    async def record_start(self) -> int:
        """Numbers this start of the plane: 1 for the first, one more for each restart."""
        return int(await self._pool.fetchval(f"INSERT INTO {SCHEMA}.starts DEFAULT VALUES RETURNING start_number"))

    async def last_seqs(self) -> tuple[int, int]:
        async with self._pool.acquire() as conn:
            candle = await conn.fetchval(f"SELECT coalesce(max(seq), 0) FROM {SCHEMA}.candles")
            factor = await conn.fetchval(f"SELECT coalesce(max(seq), 0) FROM {SCHEMA}.factor_sets")
        return int(candle), int(factor)

    async def recent_candles(self, instrument: str, timeframe: Timeframe, count: int) -> list[Candle]:
        """The last `count` closed candles of a series, oldest first (factor warm-up)."""
        rows = await self._pool.fetch(
            f"SELECT * FROM (SELECT * FROM {SCHEMA}.candles WHERE instrument=$1 AND timeframe=$2 "
            "ORDER BY start_time DESC LIMIT $3) recent ORDER BY start_time", instrument, timeframe.name, count)
        return [_candle(r) for r in rows]

    async def closed_until(self, instrument: str) -> dict[Timeframe, datetime]:
        """End of the last stored candle per timeframe of an instrument."""
        rows = await self._pool.fetch(
            f"SELECT timeframe, max(end_time) AS until FROM {SCHEMA}.candles WHERE instrument=$1 GROUP BY timeframe",
            instrument)
        return {Timeframe[r["timeframe"]]: r["until"] for r in rows if r["timeframe"] in Timeframe.__members__}

    async def candles_since(self, instrument: str, timeframe: Timeframe, start: datetime) -> list[Candle]:
        rows = await self._pool.fetch(
            f"SELECT * FROM {SCHEMA}.candles WHERE instrument=$1 AND timeframe=$2 AND start_time >= $3 "
            "ORDER BY start_time", instrument, timeframe.name, start)
        return [_candle(r) for r in rows]

    async def candle_page(self, query: PageQuery, *, after: datetime | None = None,
                          before: datetime | None = None) -> list[tuple[int, Candle]]:
        """Up to `query.limit + 1` candles (the extra one tells whether another page exists), oldest first."""
        clauses, args = ["instrument=$1", "timeframe=$2"], [query.instrument, query.timeframe.name]
        for op, value in ((">=", query.start), ("<", query.end), (">", after), ("<", before)):
            if value is not None:
                args.append(value)
                clauses.append(f"start_time {op} ${len(args)}")
        args.append(query.limit + 1)
        order = "DESC" if query.latest else "ASC"
        rows = await self._pool.fetch(
            f"SELECT * FROM {SCHEMA}.candles WHERE {' AND '.join(clauses)} ORDER BY start_time {order} "
            f"LIMIT ${len(args)}", *args)
        page = [(int(r["seq"]), _candle(r)) for r in rows]
        return page[::-1] if query.latest else page

    def candle_backfill(self) -> "CandleBackfill":
        return CandleBackfill(self._pool)

    def factor_backfill(self) -> "FactorBackfill":
        return FactorBackfill(self._pool)


class CandleBackfill:
    """The Broadcaster's Backfill protocol over stored candles (the stream carries only stored ones)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def oldest_seq(self) -> int | None:
        return await self._pool.fetchval(f"SELECT min(seq) FROM {SCHEMA}.candles")

    async def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, CandleEvent]]:
        cursor_from = after_seq
        while True:  # pages of 1,000, so a long resume never holds one huge result in memory
            rows = await self._pool.fetch(
                f"SELECT * FROM {SCHEMA}.candles WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 1000",
                cursor_from, up_to_seq)
            for r in rows:
                yield int(r["seq"]), CandleEvent(_candle(r), _trace(r))
            if len(rows) < 1000:
                return
            cursor_from = int(rows[-1]["seq"])


class FactorBackfill:
    """The Broadcaster's Backfill protocol over stored factor sets."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def oldest_seq(self) -> int | None:
        return await self._pool.fetchval(f"SELECT min(seq) FROM {SCHEMA}.factor_sets")

    async def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, FactorEvent]]:
        cursor_from = after_seq
        while True:
            rows = await self._pool.fetch(
                f"SELECT * FROM {SCHEMA}.factor_sets WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 1000",
                cursor_from, up_to_seq)
            for r in rows:
                yield int(r["seq"]), FactorEvent(r["instrument"], Timeframe[r["timeframe"]], r["candle_start_time"],
                                                 json.loads(r["factor_values"]), _trace(r))
            if len(rows) < 1000:
                return
            cursor_from = int(rows[-1]["seq"])
