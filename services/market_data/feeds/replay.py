"""Replay of recorded quotes: tick files (CSV or Parquet) and bid/ask one-minute bar files.

Tick files have the columns `timestamp,bid,ask[,volume]`. Bar files are a pair (bid, ask)
with `timestamp,open,high,low,close`, joined on `timestamp`; each joined minute becomes
four ticks at start+0s, +15s, +30s and +45s:

    open, then the extreme nearer to the open, then the other extreme, then close

i.e. the path that travels the shortest distance (the usual MT4-style rule), decided on
the mid bar and applied to bid and ask together so that every tick pairs a bid with the
ask of the same moment. Rebuilding a candle from those ticks gives back the bid bar, the
ask bar and the mid bar ((bid + ask) / 2 of each OHLC field) exactly.

A row that cannot be a quote (missing field, bad number, NaN, zero or negative price,
bid above ask; for bars also high below low or open/close outside the range, or a bid
bar wholly above the ask bar) is counted in `stats`, logged with its line number and
skipped; the replay never stops on bad data. Bar files from separate bid and ask
sources (FXCM) show a crossed open or close by a fraction of a pip now and then; that is
kept, since dropping those minutes would punch holes in the series.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.market_data.feeds.base import FeedStats, FeedTick

_YIELD_EVERY = 512  # rows between yields to the event loop, so a big file never starves the server


class MalformedRow(ValueError):
    pass


def parse_time(text: str | None) -> datetime:
    if text is None or not text.strip():
        raise MalformedRow("timestamp is missing")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MalformedRow(f"timestamp {text!r} is not ISO-8601") from None
    # A file without offsets is taken as UTC, the convention of every FX data vendor we replay.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_price(name: str, text) -> Decimal:
    if text is None or str(text).strip() == "":
        raise MalformedRow(f"{name} is missing")
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise MalformedRow(f"{name}={text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise MalformedRow(f"{name}={text!r} is not a positive finite price")
    return value


def parse_volume(text) -> Decimal:
    if text is None or str(text).strip() == "":
        return Decimal(0)
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise MalformedRow(f"volume={text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise MalformedRow(f"volume={text!r} is not a finite, non-negative number")
    return value


class TickFileFeed:
    """Replays a tick file (.csv or .parquet) for one instrument."""

    def __init__(self, path: Path, *, instrument: str = "USD_JPY") -> None:
        self.path = Path(path)
        self.name = f"replay:{self.path.name}"
        self.instruments = (instrument,)
        self.stats = FeedStats(self.name)

    def _rows(self) -> Iterator[tuple[int, dict]]:
        if self.path.suffix.lower() == ".parquet":
            import polars as pl

            frame = pl.read_parquet(self.path)
            for index, row in enumerate(frame.iter_rows(named=True), start=2):  # line 1 = header, as in CSV
                yield index, {k: (None if v is None else (v.isoformat() if isinstance(v, datetime) else v))
                              for k, v in row.items()}
            return
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, row

    async def ticks(self) -> AsyncIterator[FeedTick]:
        instrument = self.instruments[0]
        for count, (line, row) in enumerate(self._rows(), start=1):
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self.stats.rows_read += 1
            try:
                bid = parse_price("bid", row.get("bid"))
                ask = parse_price("ask", row.get("ask"))
                if bid > ask:
                    raise MalformedRow(f"bid {bid} is above ask {ask}")
                tick = FeedTick(instrument, parse_time(row.get("timestamp")), bid, ask, parse_volume(row.get("volume")))
            except MalformedRow as exc:
                self.stats.skip(line, str(exc))
                continue
            yield tick


_BAR_OFFSETS = (timedelta(0), timedelta(seconds=15), timedelta(seconds=30), timedelta(seconds=45))


def _bar(prefix: str, row: dict) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    o, h, l, c = (parse_price(f"{prefix} {field}", row.get(field)) for field in ("open", "high", "low", "close"))
    if h < l or not (l <= o <= h) or not (l <= c <= h):
        raise MalformedRow(f"{prefix} bar is inconsistent (open {o}, high {h}, low {l}, close {c})")
    return o, h, l, c


def bar_ticks(instrument: str, start: datetime, bid: tuple, ask: tuple) -> list[FeedTick]:
    """Four ticks for one minute of bid and ask bars (rule in the module docstring)."""
    mid_open, mid_high, mid_low = (bid[0] + ask[0]) / 2, (bid[1] + ask[1]) / 2, (bid[2] + ask[2]) / 2
    high_first = (mid_high - mid_open) <= (mid_open - mid_low)
    order = (0, 1, 2, 3) if high_first else (0, 2, 1, 3)
    return [FeedTick(instrument, start + offset, bid[i], ask[i]) for offset, i in zip(_BAR_OFFSETS, order)]


class BarFilesFeed:
    """Replays a bid bar file and an ask bar file joined on timestamp."""

    def __init__(self, bid_path: Path, ask_path: Path, *, instrument: str = "USD_JPY") -> None:
        self.bid_path, self.ask_path = Path(bid_path), Path(ask_path)
        self.name = f"bars:{self.bid_path.name},{self.ask_path.name}"
        self.instruments = (instrument,)
        self.stats = FeedStats(self.name)

    async def ticks(self) -> AsyncIterator[FeedTick]:
        instrument = self.instruments[0]
        bids: dict[str, tuple[int, dict]] = {}
        with self.bid_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                bids[(row.get("timestamp") or "").strip()] = (reader.line_num, row)
        with self.ask_path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            for count, ask_row in enumerate(reader, start=1):
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                self.stats.rows_read += 1
                line = reader.line_num
                key = (ask_row.get("timestamp") or "").strip()
                try:
                    start = parse_time(key)
                    found = bids.pop(key, None)
                    if found is None:
                        raise MalformedRow(f"no bid bar at {key} in {self.bid_path.name}")
                    bid_line, bid_row = found
                    bid, ask = _bar("bid", bid_row), _bar("ask", ask_row)
                    if bid[2] > ask[1]:
                        raise MalformedRow(f"the bid bar (line {bid_line}) lies wholly above the ask bar")
                except MalformedRow as exc:
                    self.stats.skip(line, str(exc))
                    continue
                for tick in bar_ticks(instrument, start, bid, ask):
                    yield tick
        for key, (bid_line, _) in bids.items():  # bid minutes without an ask minute
            self.stats.skip(bid_line, f"no ask bar at {key} in {self.ask_path.name}")
