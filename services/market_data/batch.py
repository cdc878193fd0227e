"""Batch aggregation of ticks into candles with polars (backfill, replay, history).

Same rules as the live `CandleAggregator` (see candles.py): epoch-aligned buckets,
[start, end), mid = (bid + ask) / 2 per tick in floats, first/max/min/last, volume summed
exactly (a polars Decimal column, whose sums are exact integers of its scale). On the
same ticks (in time order) both give identical candles, closed_time included: a bucket
is closed by the first tick of the instrument's next non-empty bucket, and the last
bucket of each instrument, which no tick closes, by `closed_at` as `close_due(closed_at)`
would close it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import polars as pl

from services.market_data.candles import Candle, Ohlc
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe


_MAX_DIGITS = 38  # a polars Decimal holds at most 38 digits


def ticks_frame(ticks: Iterable[FeedTick]) -> pl.DataFrame:
    """A tick DataFrame from feed ticks: instrument, time (UTC, µs), bid and ask as floats, and
    volume as an exact Decimal column whose scale fits every tick's volume."""
    rows = [(t.instrument, t.time, float(t.bid), float(t.ask), t.volume) for t in ticks]
    scale = max((max(0, -v.as_tuple().exponent) for *_, v in rows), default=0)
    if scale > _MAX_DIGITS // 2:
        raise ValueError(f"a tick volume has {scale} decimal places; the batch path sums volumes exactly "
                         f"with at most {_MAX_DIGITS // 2}")
    return pl.DataFrame(rows, schema={"instrument": pl.Utf8, "time": pl.Datetime("us", "UTC"),
                                      "bid": pl.Float64, "ask": pl.Float64,
                                      "volume": pl.Decimal(_MAX_DIGITS, scale)}, orient="row")


def aggregate(ticks: pl.DataFrame, timeframe: Timeframe, *, closed_at: datetime | None = None) -> pl.DataFrame:
    """One row per (instrument, bucket start), oldest first, with bid/ask/mid OHLC, count, volume
    and closed_time.

    closed_time is the time of the first tick past the bucket's end. The last bucket of each
    instrument has no such tick: it gets `closed_at` (the feed clock at the end of the data)
    when its end is at or before it, as the live path's close_due would, else null.
    """
    width = timeframe.seconds * 1_000_000
    frame = ticks.with_columns(
        mid=(pl.col("bid") + pl.col("ask")) / 2,
        # Epoch-aligned integer buckets, so D1 starts at 00:00 UTC and nothing depends on a timezone.
        start=(pl.col("time").dt.epoch("us") // width) * width,
    )
    if "volume" not in frame.columns:
        frame = frame.with_columns(volume=pl.lit(0, dtype=pl.Decimal(_MAX_DIGITS, 0)))
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [pl.col(side).first().alias(f"{side}_open"), pl.col(side).max().alias(f"{side}_high"),
                 pl.col(side).min().alias(f"{side}_low"), pl.col(side).last().alias(f"{side}_close")]
    aggs += [pl.len().alias("tick_count"), pl.col("volume").sum().alias("volume"),
             pl.col("time").first().alias("first_time")]
    out = frame.group_by("instrument", "start", maintain_order=True).agg(aggs)
    clock = pl.lit(closed_at, dtype=pl.Datetime("us", "UTC"))
    return (out.with_columns(start=pl.from_epoch("start", time_unit="us").dt.replace_time_zone("UTC"))
            .with_columns(end=pl.col("start") + pl.duration(seconds=timeframe.seconds))
            .sort("instrument", "start")
            .with_columns(closed_time=pl.col("first_time").shift(-1).over("instrument"))
            .with_columns(closed_time=pl.when(pl.col("closed_time").is_null() & (pl.col("end") <= clock))
                          .then(clock).otherwise(pl.col("closed_time")))
            .drop("first_time"))


def candles_from(frame: pl.DataFrame, timeframe: Timeframe) -> list[Candle]:
    """The rows of `aggregate` as domain candles (all closed; closed_time None where it is unknown).

    A Decimal volume column gives the exact volume; a float one (a frame not built by
    ticks_frame) gives only the float sum, and no exact volume.
    """
    return [
        Candle(r["instrument"], timeframe, r["start"], r["end"],
               Ohlc(r["bid_open"], r["bid_high"], r["bid_low"], r["bid_close"]),
               Ohlc(r["ask_open"], r["ask_high"], r["ask_low"], r["ask_close"]),
               Ohlc(r["mid_open"], r["mid_high"], r["mid_low"], r["mid_close"]),
               int(r["tick_count"]), float(r["volume"]), True, r.get("closed_time"),
               r["volume"] if isinstance(r["volume"], Decimal) else None)
        for r in frame.iter_rows(named=True)
    ]
