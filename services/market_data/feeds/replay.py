"""Replay of recorded market data: tick files (CSV or Parquet) and bid/ask one-minute bar files.

Tick files are quotes, trade prints or HistData ticks, told apart from their first line (see
files.py for every format and its timezone rule). Bar files are a pair (bid, ask) with
`timestamp,open,high,low,close`, joined on `timestamp`; each joined minute becomes four
ticks at start+0s, +15s, +30s and +45s:

    open, then the extreme nearer to the open, then the other extreme, then close

i.e. the path that travels the shortest distance (the usual MT4-style rule), decided on
the mid bar and applied to bid and ask together so that every tick pairs a bid with the
ask of the same moment. Rebuilding a candle from those ticks gives back the bid bar, the
ask bar and the mid bar ((bid + ask) / 2 of each OHLC field) exactly.

A row that cannot be a quote (missing field, bad number, NaN, zero or negative price,
bid above ask; for bars also high below low or open/close outside the range, or a bid
bar wholly above the ask bar) is counted in `stats` with its line and reason and skipped;
`stats.summary()` tells the count and the first few once, at the end, instead of a log
line per row. A file where not one row is usable raises `UnusableFile` naming the first
bad line and why, instead of ending as an empty replay. Bar files from separate bid and
ask sources (FXCM) show a crossed open or close by a fraction of a pip now and then;
that is kept, since dropping those minutes would punch holes in the series.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path

from services.market_data.feeds.base import FeedStats, FeedTick
from services.market_data.feeds.files import (Layout, MalformedRow, UnusableFile, open_text, parse_price, parse_time,
                                              rows, sniff, tick_maker)

_YIELD_EVERY = 512  # rows between yields to the event loop, so a big file never starves the server


def nothing_usable(path: Path, stats: FeedStats) -> UnusableFile:
    """The error for a file that gave no tick: its first bad line and why, or that it has no rows."""
    if not stats.first_skips:
        return UnusableFile(f"{path} has no data rows")
    line, reason = stats.first_skips[0]
    return UnusableFile(f"not one of the {stats.rows_read:,} rows of {path} is usable; the first: "
                        f"{path}:{line}: {reason}")


class TickFileFeed:
    """Replays a tick file (.csv, gzipped .csv.gz or .parquet) for one instrument.

    `timezone` is that of times written without an offset (None: the format's default, see
    files.py); `half_spread` puts a trade print's bid and ask that far either side of its price.
    """

    def __init__(self, path: Path, *, instrument: str = "USD_JPY", timezone: tzinfo | None = None,
                 half_spread: Decimal = Decimal(0)) -> None:
        self.path = Path(path)
        self.name = f"replay:{self.path.name}"
        self.instruments = (instrument,)
        self.stats = FeedStats(self.name)
        self._timezone = timezone
        self._half_spread = half_spread
        self._layout: Layout | None = None

    @property
    def layout(self) -> Layout:
        """What the file holds (raises UnusableFile when that cannot be told)."""
        if self._layout is None:
            self._layout = sniff(self.path, self._timezone)
        return self._layout

    async def ticks(self) -> AsyncIterator[FeedTick]:
        make = tick_maker(self.layout, self.instruments[0], half_spread=self._half_spread)
        usable = 0
        for count, (line, row) in enumerate(rows(self.path, self.layout), start=1):
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            self.stats.rows_read += 1
            try:
                tick = make(row)
            except MalformedRow as exc:
                self.stats.skip(line, str(exc))
                continue
            usable += 1
            yield tick
        if not usable:
            raise nothing_usable(self.path, self.stats)


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
    """Replays a bid bar file and an ask bar file joined on timestamp (CSV, or gzipped CSV ending in .gz)."""

    def __init__(self, bid_path: Path, ask_path: Path, *, instrument: str = "USD_JPY") -> None:
        self.bid_path, self.ask_path = Path(bid_path), Path(ask_path)
        self.name = f"bars:{self.bid_path.name},{self.ask_path.name}"
        self.instruments = (instrument,)
        self.stats = FeedStats(self.name)

    async def ticks(self) -> AsyncIterator[FeedTick]:
        instrument = self.instruments[0]
        usable = 0
        bids: dict[str, tuple[int, dict]] = {}
        with open_text(self.bid_path) as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                bids[(row.get("timestamp") or "").strip()] = (reader.line_num, row)
        with open_text(self.ask_path) as handle:
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
                usable += 1
                for tick in bar_ticks(instrument, start, bid, ask):
                    yield tick
        for key, (bid_line, _) in bids.items():  # bid minutes without an ask minute
            self.stats.skip(bid_line, f"no ask bar at {key} in {self.ask_path.name}")
        if not usable:
            raise nothing_usable(self.ask_path, self.stats)
