"""Market data for a backtest, as ticks, from the same feed code the market_data plane runs.

Accepted inputs:
- a tick file (CSV or Parquet), read by the plane's TickFileFeed: quotes
  (timestamp,bid,ask[,volume]), trade prints (timestamp,price,quantity[,side|buyer_maker]),
  HistData ticks without a header, or a Binance trade dump; every format, and the timezone
  of times written without an offset, is described in services/market_data/feeds/files.py;
- `BID.csv,ASK.csv`: one-minute bid and ask bar files, read by the plane's BarFilesFeed
  (four ticks per bar: open, then high/low in the order the plane documents, then close);
- one OHLC bar file of any width (columns Open/High/Low/Close, any case; time in the first
  column, e.g. backtesting.py's EURUSD): four ticks spread over the bar's width with bid =
  ask = the bar price plus/minus half of `spread`, in the same open/high/low/close order.

`spread` also puts a trade print's bid and ask half a spread either side of its price;
quotes keep their own. A file no row of which is usable is a DataError naming the first bad
line and why; rows skipped in a usable file are summarized once (`skipped_summary`).
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from services.backtest.cache import CachedTicks, TickCache, micros, columns_of
from services.market_data.feeds.base import FeedStats, FeedTick
from services.market_data.feeds.files import UnusableFile
from services.market_data.feeds.replay import BarFilesFeed, TickFileFeed


class DataError(ValueError):
    """The data file cannot be used; the message says why and what is expected."""


def _ohlc_columns(frame: pl.DataFrame) -> dict[str, str]:
    lower = {c.lower(): c for c in frame.columns}
    missing = [c for c in ("open", "high", "low", "close") if c not in lower]
    if missing:
        raise DataError(f"no {', '.join(missing)} column: an OHLC bar file needs Open, High, Low and Close columns")
    return {name: lower[name] for name in ("open", "high", "low", "close")}


def is_ohlc_file(path: Path) -> bool:
    try:
        frame = pl.read_csv(path, n_rows=2) if path.suffix.lower() != ".parquet" else pl.read_parquet(path).head(2)
    except Exception:  # noqa: BLE001 - not a table polars reads: the tick-file reader says what is wrong
        return False
    columns = {c.lower() for c in frame.columns}
    return {"open", "high", "low", "close"} <= columns and "bid" not in columns


def ohlc_ticks(path: Path, instrument: str, *, spread: Decimal = Decimal(0)) -> Iterator[FeedTick]:
    frame = pl.read_csv(path, try_parse_dates=True) if path.suffix.lower() != ".parquet" else pl.read_parquet(path)
    names = _ohlc_columns(frame)
    time_column = frame.columns[0]
    times = frame[time_column]
    if times.dtype == pl.Utf8:
        times = times.str.to_datetime(time_zone="UTC")
    elif getattr(times.dtype, "time_zone", None) is None:
        times = times.dt.replace_time_zone("UTC")
    starts = [t if t.tzinfo else t.replace(tzinfo=timezone.utc) for t in times.to_list()]
    if len(starts) < 2:
        raise DataError(f"{path} has fewer than two bars")
    width = min(b - a for a, b in zip(starts, starts[1:]) if b > a)
    offsets = (timedelta(0), width / 4, width / 2, width * 3 / 4)
    half = spread / 2
    columns = [frame[names[n]].cast(pl.Utf8).to_list() for n in ("open", "high", "low", "close")]
    for start, o, h, l, c in zip(starts, *columns):
        prices = [Decimal(o), Decimal(h), Decimal(l), Decimal(c)]
        high_first = (prices[1] - prices[0]) <= (prices[0] - prices[2])  # the plane's rule for bar files
        order = (0, 1, 2, 3) if high_first else (0, 2, 1, 3)
        for offset, i in zip(offsets, order):
            yield FeedTick(instrument, start + offset, prices[i] - half, prices[i] + half)


class MarketData:
    """One `--data` spec opened for a backtest: what it holds, its ticks within a window, and
    what reading them found (the span of the data, rows skipped).

    With a `cache` the spec is parsed once (services/backtest/cache.py): the first run reads
    the whole file and stores its ticks, later runs read the stored columns.
    """

    def __init__(self, spec: str, instrument: str, *, spread: Decimal = Decimal(0),
                 timezone: tzinfo | None = None, cache: TickCache | None = None) -> None:
        self.spec = spec
        self.instrument = instrument
        self._cache = cache
        self._columns: CachedTicks | None = None
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.read_to_the_end = False
        self.timezone_note = ""  # tick files: how times without an offset are read
        self._stats: FeedStats | None = None
        paths = [Path(p) for p in spec.split(",", 1)]
        for path in paths:
            if not path.exists():
                raise DataError(f"{path} does not exist")
        if len(paths) == 2:
            feed = BarFilesFeed(*paths, instrument=instrument)
            self._stats, self._source = feed.stats, feed.ticks
            self.description = f"{paths[0].name}, {paths[1].name}: one-minute bid and ask bars"
        elif is_ohlc_file(paths[0]):
            self._source = lambda: _aiter(ohlc_ticks(paths[0], instrument, spread=spread))
            self.description = f"{paths[0].name}: OHLC bars (bid = ask = the bar price -/+ half the spread)"
        else:
            feed = TickFileFeed(paths[0], instrument=instrument, timezone=timezone, half_spread=spread / 2)
            try:
                layout = feed.layout
            except UnusableFile as exc:
                raise DataError(str(exc)) from None
            self._stats, self._source = feed.stats, feed.ticks
            self.description = f"{paths[0].name}: {layout.description}"
            self.timezone_note = layout.timezone_note
        if cache is not None:
            self._key = cache.key(paths, instrument=instrument, spread=spread, timezone_name=str(timezone))
            self._columns = cache.load(self._key)

    @property
    def cache_key(self) -> str:
        """The key of this spec's ticks in the cache (with a cache)."""
        return self._key

    async def columns(self) -> CachedTicks:
        """Every tick of the spec as columns: from the cache, or read now (and stored when caching)."""
        if self._columns is None:
            try:
                ticks = [tick async for tick in self._source()]
            except UnusableFile as exc:
                raise DataError(str(exc)) from None
            name = Path(self.spec.split(",")[-1]).name
            self._columns = columns_of(ticks, self.instrument, description=self.description,
                                       timezone_note=self.timezone_note,
                                       skipped_summary=self._stats.summary(name) if self._stats is not None else "")
            if self._cache is not None:
                self._cache.store(self._key, self._columns)
        return self._columns

    def ticks(self, start: datetime | None = None, end: datetime | None = None) -> AsyncIterator[FeedTick]:
        """Ticks within [start, end), oldest first (with a cache, a CachedWindow: the in-process
        backtest reads its columns instead)."""
        if self._cache is not None:
            return CachedWindow(self, start, end)
        return self._read(start, end)

    async def _read(self, start: datetime | None, end: datetime | None) -> AsyncIterator[FeedTick]:
        try:
            async for tick in self._source():
                if self.first_time is None:
                    self.first_time = tick.time
                self.last_time = tick.time
                if start is not None and tick.time < start:
                    continue
                if end is not None and tick.time >= end:
                    return
                yield tick
        except UnusableFile as exc:
            raise DataError(str(exc)) from None
        self.read_to_the_end = True

    async def window(self, end: datetime | None) -> CachedTicks:
        """The columns, noting the span `span()` reports for a window ending at `end`."""
        columns = await self.columns()
        if len(columns):
            self.first_time = columns.time(0)
            past = len(columns) if end is None else int(np.searchsorted(columns.time_us, micros(end), "left"))
            self.read_to_the_end = past == len(columns)
            self.last_time = columns.time(len(columns) - 1 if self.read_to_the_end else past)
        return columns

    def skipped_summary(self) -> str:
        """Rows skipped, with file:line: reason for the first few; empty when none were."""
        if self._columns is not None and self._cache is not None:
            return self._columns.skipped_summary
        return self._stats.summary(Path(self.spec.split(",")[-1]).name) if self._stats is not None else ""

    def span(self) -> str:
        """What the data covered, as far as it was read, for a window that held no tick."""
        if self.first_time is None:
            return "the data holds no tick"
        if self.read_to_the_end:
            return f"the data runs from {self.first_time.isoformat()} to {self.last_time.isoformat()}"
        return (f"the data starts at {self.first_time.isoformat()} and its first tick at or after the window's "
                f"end is at {self.last_time.isoformat()}")


class CachedWindow:
    """The ticks of a cached spec within [start, end). Iterated, they are FeedTicks; the in-process
    backtest reads `columns()` and `rows` instead and builds a FeedTick only for the ticks that need
    one (three in four only extend a candle, and a FeedTick each was a tenth of a run)."""

    def __init__(self, data: MarketData, start: datetime | None, end: datetime | None) -> None:
        self.data = data
        self.start = start
        self.end = end

    def __aiter__(self) -> AsyncIterator[FeedTick]:
        return self._ticks()

    async def _ticks(self) -> AsyncIterator[FeedTick]:
        for tick in (await self.columns()).ticks(self.start, self.end):
            yield tick

    async def columns(self) -> CachedTicks:
        """The spec's columns (every tick; `CachedTicks.rows(start, end)` gives this window's)."""
        return await self.data.window(self.end)


async def ticks_from(spec: str, instrument: str, *, spread: Decimal = Decimal(0),
                     start: datetime | None = None, end: datetime | None = None) -> AsyncIterator[FeedTick]:
    """Ticks of `spec` within [start, end), oldest first."""
    async for tick in MarketData(spec, instrument, spread=spread).ticks(start, end):
        yield tick


async def _aiter(items: Iterator[FeedTick]) -> AsyncIterator[FeedTick]:
    for item in items:
        yield item


def count_rows(spec: str) -> int | None:
    """Rows of the (first) file, for the progress bar; None when it cannot be told cheaply."""
    path = Path(spec.split(",", 1)[0])
    try:
        if path.suffix.lower() == ".parquet":
            return pl.scan_parquet(path).select(pl.len()).collect().item()
        with (gzip.open(path, "rb") if path.suffix.lower() == ".gz" else path.open("rb")) as handle:
            return max(0, sum(1 for _ in handle) - 1)
    except (OSError, EOFError):
        return None
