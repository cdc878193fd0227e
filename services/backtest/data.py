"""Market data for a backtest, as ticks, from the same feed code the market_data plane runs.

Accepted inputs:
- a tick file (CSV or Parquet: timestamp,bid,ask[,volume]), read by the plane's TickFileFeed;
- `BID.csv,ASK.csv`: one-minute bid and ask bar files, read by the plane's BarFilesFeed
  (four ticks per bar: open, then high/low in the order the plane documents, then close);
- one OHLC bar file of any width (columns Open/High/Low/Close, any case; time in the first
  column, e.g. backtesting.py's EURUSD): four ticks spread over the bar's width with bid =
  ask = the bar price plus/minus half of `spread`, in the same open/high/low/close order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl

from services.market_data.feeds.base import FeedTick
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
    frame = pl.read_csv(path, n_rows=2) if path.suffix.lower() != ".parquet" else pl.read_parquet(path).head(2)
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


async def ticks_from(spec: str, instrument: str, *, spread: Decimal = Decimal(0),
                     start: datetime | None = None, end: datetime | None = None) -> AsyncIterator[FeedTick]:
    """Ticks of `spec` within [start, end), oldest first."""
    if "," in spec:
        bid, ask = (Path(p) for p in spec.split(",", 1))
        for path in (bid, ask):
            if not path.exists():
                raise DataError(f"{path} does not exist")
        source = BarFilesFeed(bid, ask, instrument=instrument).ticks()
    else:
        path = Path(spec)
        if not path.exists():
            raise DataError(f"{path} does not exist")
        source = _aiter(ohlc_ticks(path, instrument, spread=spread)) if is_ohlc_file(path) else \
            TickFileFeed(path, instrument=instrument).ticks()
    async for tick in source:
        if start is not None and tick.time < start:
            continue
        if end is not None and tick.time >= end:
            break
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
        with path.open("rb") as handle:
            return max(0, sum(1 for _ in handle) - 1)
    except OSError:
        return None
