"""Data files a trader has: HistData ticks, trade prints (CSV, Parquet, Binance dumps), and files
that give no tick, refused with the first bad line and why."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedStats
from services.market_data.feeds.files import (HISTDATA_TIMEZONE, MalformedRow, UnusableFile, histdata_time,
                                              parse_time, parse_timezone, sniff)
from services.market_data.feeds.replay import BarFilesFeed, TickFileFeed
from services.market_data.instruments import Timeframe
from tests.support.data import truefx_ticks

UTC = timezone.utc
HISTDATA = Path(__file__).resolve().parents[2] / "data" / "histdata-usdjpy-ticks-2013-01-01.csv.gz"


async def read(feed) -> list:
    return [t async for t in feed.ticks()]


async def test_a_histdata_file_reads_as_new_york_standard_time_and_gives_the_same_ticks_as_its_source():
    feed = TickFileFeed(HISTDATA)
    assert feed.layout.kind == "histdata" and not feed.layout.header
    assert feed.layout.timezone_note == ("times without an offset read as UTC-05:00 "
                                         "(HistData's New York standard time, no daylight saving)")
    ticks = await read(feed)
    source = await truefx_ticks()  # the same quotes, with UTC offsets
    assert [(t.time, t.bid, t.ask, t.volume) for t in ticks] == [(t.time, t.bid, t.ask, t.volume) for t in source]
    assert feed.stats.malformed == 0 and feed.stats.rows_read == 1000


async def test_the_user_gives_the_histdata_timezone_and_it_is_applied():
    feed = TickFileFeed(HISTDATA, timezone=parse_timezone("UTC"))
    first = (await read(feed))[0]
    assert first.time == datetime(2013, 1, 1, 17, 0, 0, 295_000, tzinfo=UTC)
    assert feed.layout.timezone_note == "times without an offset read as UTC"


def test_histdata_times_have_no_daylight_saving_shift():
    assert histdata_time("20200101 170000065", HISTDATA_TIMEZONE) == datetime(2020, 1, 1, 22, 0, 0, 65_000, tzinfo=UTC)
    assert histdata_time("20200701 170000000", HISTDATA_TIMEZONE) == datetime(2020, 7, 1, 22, 0, tzinfo=UTC)
    new_york = ZoneInfo("America/New_York")  # a trader who wants DST can name the zone
    assert histdata_time("20200701 170000000", new_york) == datetime(2020, 7, 1, 21, 0, tzinfo=UTC)
    for bad in ("2020-01-01 17:00:00", "20200101 1700000", "20201301 170000000"):
        with pytest.raises(MalformedRow):
            histdata_time(bad, HISTDATA_TIMEZONE)


@pytest.mark.parametrize("text, offset", [("UTC", 0), ("-05:00", -300), ("UTC+09:00", 540), ("+0930", 570),
                                          ("GMT-3", -180)])
def test_timezones_are_offsets_utc_or_zone_names(text, offset):
    assert parse_timezone(text).utcoffset(None) == timedelta(minutes=offset)
    assert parse_timezone("Asia/Tokyo").utcoffset(datetime(2020, 1, 1)) == timedelta(hours=9)
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a timezone; give an offset such as -05:00"):
        parse_timezone("Mars/Olympus")


@pytest.mark.parametrize("cell", ["1577836800", "1577836800000", "1577836800000000", "1577836800000000000",
                                  1577836800000, "2020-01-01T00:00:00Z", "2020-01-01 09:00:00+09:00"])
def test_times_since_the_epoch_are_told_apart_by_size_and_iso_text_reads_as_before(cell):
    assert parse_time(cell) == datetime(2020, 1, 1, tzinfo=UTC)


def trades_frame() -> pl.DataFrame:
    start = datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC)
    return pl.DataFrame({
        "timestamp": [start + timedelta(seconds=s) for s in (0, 2, 3, 7, 8)],
        "trade_id": [11, 12, 13, 14, 15],
        "price": ["15000000", "15000100", "14999900", "15000200", "15000300"],
        "quantity": ["0.01", "0.25", "0.1", "0.2", "0.3"],
        "buyer_maker": [False, True, False, True, False]})


async def test_trade_prints_in_parquet_become_ticks_at_the_trade_price_with_volume_and_taker_side(tmp_path):
    path = tmp_path / "trades.parquet"
    trades_frame().write_parquet(path)
    feed = TickFileFeed(path, instrument="BTC_JPY")
    assert feed.layout.kind == "trades"
    ticks = await read(feed)
    assert [(t.bid, t.ask, t.volume, t.aggressor) for t in ticks[:2]] == [
        (Decimal("15000000"), Decimal("15000000"), Decimal("0.01"), "buy"),
        (Decimal("15000100"), Decimal("15000100"), Decimal("0.25"), "sell")]  # the buyer rested: a seller took
    aggregator = CandleAggregator([Timeframe.S5])
    (candle,) = [c for t in ticks for c in aggregator.on_tick(t)]  # the first S5 bucket, closed by the 4th trade
    assert (candle.mid.open, candle.mid.high, candle.mid.low, candle.mid.close) == (15000000, 15000100, 14999900,
                                                                                      14999900)
    assert candle.bid == candle.ask == candle.mid  # the last-price series
    assert candle.exact_volume == Decimal("0.36") and candle.tick_count == 3


async def test_trade_prints_in_csv_with_epoch_milliseconds_and_a_side_column_and_a_spread(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("time,id,price,qty,side\n"
                    "1767571201000,1,15000000,0.5,buy\n"
                    "1767571202500,2,15000010,0.25,SELL\n")
    ticks = await read(TickFileFeed(path, instrument="BTC_JPY", half_spread=Decimal("50")))
    assert [(t.time, t.bid, t.ask, t.volume, t.aggressor) for t in ticks] == [
        (datetime(2026, 1, 5, 0, 0, 1, tzinfo=UTC), Decimal("14999950"), Decimal("15000050"), Decimal("0.5"), "buy"),
        (datetime(2026, 1, 5, 0, 0, 2, 500_000, tzinfo=UTC), Decimal("14999960"), Decimal("15000060"),
         Decimal("0.25"), "sell")]


async def test_a_binance_trade_dump_without_a_header_reads_as_trade_prints(tmp_path):
    path = tmp_path / "BTCUSDT-trades-2026-01-05.csv"
    path.write_text("4021570001,94000.10,0.00500000,470.0005,1767571201000,True,True\n"
                    "4021570002,94000.20,0.01000000,940.002,1767571201050,False,True\n")
    feed = TickFileFeed(path, instrument="BTC_USDT")
    ticks = await read(feed)
    assert feed.layout.kind == "binance-trades"
    assert [(t.bid, t.volume, t.aggressor) for t in ticks] == [(Decimal("94000.10"), Decimal("0.00500000"), "sell"),
                                                               (Decimal("94000.20"), Decimal("0.01000000"), "buy")]


@pytest.mark.parametrize("content, message", [
    ("timestamp,bid,ask\nyesterday,1.1,1.2\n2020-01-01,abc,1.2\n",
     "not one of the 2 rows of {path} is usable; the first: {path}:2: timestamp 'yesterday' is neither ISO-8601 "
     "nor a number since the epoch"),
    ("timestamp,price,quantity\n2020-01-01T00:00:00Z,100,٣\n",
     "{path}:2: quantity='٣' is not a number written in ASCII digits"),
    ("20200101 170000065,1.121200\n20200101 1700000,1.1,1.2,0\n",
     "the first: {path}:1: ask is missing"),
    ("timestamp,bid,ask\n", "{path} has no data rows"),
])
async def test_a_file_no_row_of_which_parses_names_the_first_bad_line_and_why(tmp_path, content, message):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(UnusableFile) as refused:
        await read(TickFileFeed(path))
    assert message.format(path=path) in str(refused.value)


@pytest.mark.parametrize("content, message", [
    ("", "is empty; expected a header with timestamp,bid,ask[,volume]"),
    ("when,what\n1,2\n", ":1: cannot tell what the rows hold from 'when,what'"),
])
def test_a_file_whose_kind_cannot_be_told_is_refused_with_what_is_expected(tmp_path, content, message):
    path = tmp_path / "mystery.csv"
    path.write_text(content)
    with pytest.raises(UnusableFile, match=re.escape(message)):
        sniff(path)


async def test_bar_files_no_row_of_which_is_usable_are_refused(tmp_path):
    (tmp_path / "bid.csv").write_text("timestamp,open,high,low,close\n2013-02-01T00:00:00+00:00,1,1,1,x\n")
    (tmp_path / "ask.csv").write_text("timestamp,open,high,low,close\n2013-02-01T00:00:00+00:00,1,1,1,1\n")
    with pytest.raises(UnusableFile, match="ask.csv:2: bid close='x' is not a number"):
        await read(BarFilesFeed(tmp_path / "bid.csv", tmp_path / "ask.csv"))


def test_a_live_feed_logs_its_1st_10th_and_100th_skip_only(caplog):
    stats = FeedStats("gmo", live=True)
    with caplog.at_level(logging.WARNING):
        for n in range(1, 151):
            stats.skip(n, "not JSON")
    assert [r.skipped_so_far for r in caplog.records] == [1, 10, 100]
    assert stats.malformed == 150 and len(stats.first_skips) == 5
