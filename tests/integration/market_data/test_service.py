"""The MarketData service on loopback with a real PostgreSQL: history, quotes, streams, bad input."""

from __future__ import annotations

import asyncio

import grpc
import pandas as pd
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from services.market_data.feeds.replay import BarFilesFeed, TickFileFeed
from tests.integration.market_data.conftest import GatedFeed, bar_files, running_plane
from tests.support.data import TRUEFX_TICKS, text_lines

M1, S5 = common_pb2.TIMEFRAME_M1, common_pb2.TIMEFRAME_S5


async def bar_ticks(tmp_path, rows):
    return [t async for t in BarFilesFeed(*bar_files(tmp_path, rows)).ticks()]


async def wait_for(predicate, timeout=30.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_bar_replay_serves_history_pages_quote_and_instruments(fresh_database_url, tmp_path):
    rows = 300
    bid_path, ask_path = bar_files(tmp_path, rows)
    async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"bars:{bid_path},{ask_path}"}) as p:
        await asyncio.wait_for(p.plane.feed_done.wait(), 60)
        await p.plane.recorder.flush()
        whole = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=5000))
        assert len(whole.candles) == rows - 1 and not whole.next_page_token  # the last minute is still open
        bid, ask = pd.read_csv(bid_path), pd.read_csv(ask_path)
        for i, candle in enumerate(whole.candles):
            assert candle.closed and candle.tick_count == 4
            assert candle.mid.high == pytest.approx((bid["high"][i] + ask["high"][i]) / 2, abs=1e-9)
            assert candle.mid.close == pytest.approx((bid["close"][i] + ask["close"][i]) / 2, abs=1e-9)
        assert list(whole.seqs) == sorted(whole.seqs) and len(set(whole.seqs)) == len(whole.seqs)

        pages, token = [], ""
        while True:
            page = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=100,
                                                                page_token=token))
            pages += page.candles
            token = page.next_page_token
            if not token:
                break
        assert pages == list(whole.candles)

        newest = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=10, latest=True))
        assert list(newest.candles) == list(whole.candles[-10:]) and list(newest.seqs) == list(whole.seqs[-10:])
        older = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=10, latest=True,
                                                             page_token=newest.next_page_token))
        assert list(older.candles) == list(whole.candles[-20:-10])
        ranged = await p.stub.GetCandles(pb.GetCandlesRequest(
            instrument="USD_JPY", timeframe=M1, start_time=whole.candles[5].start_time,
            end_time=whole.candles[8].start_time))
        assert list(ranged.candles) == list(whole.candles[5:8])

        quote = await p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"))
        assert (quote.tick.bid, quote.tick.ask) == (f"{bid['close'][rows - 1]:.3f}", f"{ask['close'][rows - 1]:.3f}")
        assert quote.seq == rows * 4
        listed = await p.stub.ListInstruments(pb.ListInstrumentsRequest())
        (item,) = listed.instruments
        assert (item.symbol, item.tick_size, item.quote_currency) == ("USD_JPY", "0.001", "JPY")
        assert item.feed == "bars:bid.csv,ask.csv" and item.last_tick_time == quote.tick.time
        # The replay has ended but the plane keeps serving, and the streams stay open.
        call = p.stub.StreamCandles(pb.StreamCandlesRequest(timeframes=[M1], resume_after_seq=0))
        first = await call.read()
        assert first.seq == whole.seqs[0] and first.candle == whole.candles[0] and first.trace_context.traceparent
        call.cancel()


async def test_bad_requests_are_refused_with_a_sentence_naming_the_allowed_values(fresh_database_url, tmp_path):
    feed = GatedFeed(await bar_ticks(tmp_path, 30))
    async with running_plane(fresh_database_url, {"QUANTMESH_TICK_WINDOW": "20", "QUANTMESH_REPLAY_SPEED": "max"}, feed=feed) as p:
        async def refused(call_coro, code, *phrases):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call_coro
            assert err.value.code() == code, err.value.details()
            for phrase in phrases:
                assert phrase in err.value.details()

        async def first_of(stream):
            return await stream.read()

        invalid = grpc.StatusCode.INVALID_ARGUMENT
        await refused(p.stub.GetQuote(pb.GetQuoteRequest(instrument="EUR_GBP")), invalid, "'EUR_GBP'", "USD_JPY")
        await refused(p.stub.GetQuote(pb.GetQuoteRequest()), invalid, "instrument is required")
        await refused(p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY")), grpc.StatusCode.FAILED_PRECONDITION,
                      "no tick for USD_JPY has arrived yet")
        await refused(p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY")), invalid,
                      "TIMEFRAME_UNSPECIFIED", "TIMEFRAME_S5, TIMEFRAME_M1, TIMEFRAME_M5, TIMEFRAME_H1")
        await refused(p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=99)), invalid,
                      "timeframe 99 is not a candle timeframe")
        await refused(p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, page_token="garbage")),
                      invalid, "page_token 'garbage'")
        await refused(first_of(p.stub.StreamCandles(pb.StreamCandlesRequest(instruments=["BTC_JPY"]))), invalid,
                      "instruments 'BTC_JPY'", "USD_JPY")
        await refused(first_of(p.stub.StreamFactors(pb.StreamFactorsRequest(timeframes=[M1, 42]))), invalid,
                      "timeframes 42")
        await refused(first_of(p.stub.StreamTicks(pb.StreamTicksRequest(instruments=["XAU_USD"]))), invalid, "XAU_USD")

        feed.release(100)  # 30 bars = 120 ticks, 100 of them now; the tick window keeps 20
        await wait_for(lambda: p.plane.engine.tick_stream.last_seq == 100)
        await refused(first_of(p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=10))),
                      grpc.StatusCode.FAILED_PRECONDITION, "older than the tick events this server retains")
        await refused(first_of(p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=500))),
                      grpc.StatusCode.FAILED_PRECONDITION, "ahead of the tick stream")
        ticks = p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=80))  # within the window: served
        assert [(await ticks.read()).seq for _ in range(20)] == list(range(81, 101))
        ticks.cancel()


async def test_malformed_rows_and_out_of_order_ticks_are_dropped_and_the_plane_keeps_serving(fresh_database_url,
                                                                                              tmp_path):
    lines = text_lines(TRUEFX_TICKS)
    # line 4 malformed, line 6 a tick from before line 5 (out of order), line 8 crossed
    lines[3] = lines[3].replace("86.655", "eighty-six")
    lines[5] = "2013-01-01 22:00:00.100000+00:00,80.000,80.100"
    lines[7] = "2013-01-01 22:02:37+00:00,86.900,86.700"
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join(lines) + "\n")
    async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{path}"}) as p:
        await asyncio.wait_for(p.plane.feed_done.wait(), 60)
        feed = p.plane.feed
        assert isinstance(feed, TickFileFeed)
        assert feed.stats.malformed == 2 and feed.stats.malformed_lines == [4, 8]
        assert p.plane.engine.aggregator.late_ticks == {"USD_JPY": 1}
        assert p.plane.engine.ticks_accepted == 1000 - 3
        stream = p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=0))
        seen = [await stream.read() for _ in range(997)]
        stream.cancel()
        assert "80.000" not in {m.tick.bid for m in seen} and [m.seq for m in seen] == list(range(1, 998))
        assert all(a.tick.time.ToDatetime() <= b.tick.time.ToDatetime() for a, b in zip(seen, seen[1:]))
        quote = await p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"))
        assert quote.seq == 997 and quote.tick.bid == lines[-1].split(",")[1]


async def test_the_plane_replays_a_histdata_file_in_new_york_standard_time_and_says_so(fresh_database_url, tmp_path,
                                                                                       caplog):
    import gzip
    from pathlib import Path

    packed = Path(__file__).resolve().parents[2] / "data" / "histdata-usdjpy-ticks-2013-01-01.csv.gz"
    path = tmp_path / "DAT_ASCII_USDJPY_T_201301.csv"
    path.write_bytes(gzip.decompress(packed.read_bytes()))
    with caplog.at_level("INFO", logger="services.market_data.plane"):
        async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{path}"}) as p:
            await asyncio.wait_for(p.plane.feed_done.wait(), 60)
            await p.plane.recorder.flush()
            page = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=1))
    assert page.candles[0].start_time.ToJsonString() == "2013-01-01T22:00:00Z"  # 17:00 in New York, standard time
    assert any(r.getMessage() == f"replaying {path} as HistData ticks (date time, bid, ask, volume; no header); "
               "times without an offset read as UTC-05:00 (HistData's New York standard time, no daylight saving)"
               for r in caplog.records)


async def test_a_replay_file_with_no_usable_row_is_logged_with_its_first_bad_line_and_the_plane_keeps_serving(
        fresh_database_url, tmp_path, caplog):
    path = tmp_path / "ticks.csv"
    path.write_text("timestamp,bid,ask\n2013-01-01T22:00:00Z,,86.7\n2013-01-01T22:00:01Z,86.6,\n")
    with caplog.at_level("INFO", logger="services.market_data.plane"):
        async with running_plane(fresh_database_url, {"QUANTMESH_FEED": f"replay:{path}"}) as p:
            await asyncio.wait_for(p.plane.feed_done.wait(), 60)
            listed = await p.stub.ListInstruments(pb.ListInstrumentsRequest())
    assert [i.symbol for i in listed.instruments] == ["USD_JPY"]
    messages = [r.getMessage() for r in caplog.records]
    assert (f"the feed gave no tick: not one of the 2 rows of {path} is usable; the first: {path}:2: bid is missing"
            in messages)
    assert f"skipped 2 of 2 rows of replay:ticks.csv:\n  replay:ticks.csv:2: bid is missing\n" \
           f"  replay:ticks.csv:3: ask is missing" in messages
