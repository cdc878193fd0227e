"""A plane fed over PublishTicks (QUANTMESH_FEED=push), on loopback with a real PostgreSQL:
what the answer says the streams carry, late ticks, bad input, auth, storage of closed_time."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from services.common.auth import bearer_metadata
from services.common.db import apply_migrations, connect_pool
from services.common.timeutil import from_timestamp, to_timestamp
from services.market_data.__main__ import MIGRATIONS
from services.market_data.candles import CandleAggregator
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe
from services.market_data.repository import SCHEMA
from services.market_data.server import candle_to_proto, tick_to_proto
from tests.integration.market_data.conftest import running_plane
from tests.support.data import TRUEFX_TICKS, truefx_ticks

PUSH = {"QUANTMESH_FEED": "push", "QUANTMESH_INSTRUMENTS": "USD_JPY,EUR_USD"}
TICKS = TRUEFX_TICKS
UTC = timezone.utc
T0 = datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC)  # a Monday morning
M1, S5 = common_pb2.TIMEFRAME_M1, common_pb2.TIMEFRAME_S5


@pytest.fixture(scope="module")
async def real_ticks() -> list[FeedTick]:
    return await truefx_ticks()


def quote(instrument: str, time: datetime, bid: str = "157.100", ask: str = "157.103", **fields) -> pb.Tick:
    return pb.Tick(instrument=instrument, time=to_timestamp(time), bid=bid, ask=ask, **fields)


def publish(ticks) -> pb.PublishTicksRequest:
    return pb.PublishTicksRequest(ticks=[tick_to_proto(t) if isinstance(t, FeedTick) else t for t in ticks])


async def wait_for(predicate, timeout=30.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def read_up_to(call, last_seq: int, timeout: float = 30.0) -> list:
    got = []
    async with asyncio.timeout(timeout):
        while last_seq and (not got or got[-1].seq < last_seq):
            got.append(await call.read())
    return got


async def refused(call, code, *phrases):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    for phrase in phrases:
        assert phrase in err.value.details(), err.value.details()
    return err.value.details()


async def test_published_ticks_close_candles_the_streams_deliver_up_to_the_answered_seqs(fresh_database_url,
                                                                                        real_ticks):
    async with running_plane(fresh_database_url, PUSH) as p:
        engine = p.plane.engine
        candles = p.stub.StreamCandles(pb.StreamCandlesRequest())  # live only: subscribed before publishing
        factors = p.stub.StreamFactors(pb.StreamFactorsRequest())
        await wait_for(lambda: engine.candle_stream.subscriber_count == engine.factor_stream.subscriber_count == 1)

        first = await p.stub.PublishTicks(publish(real_ticks[:600]))
        second = await p.stub.PublishTicks(publish(real_ticks[600:]))
        got_candles = await read_up_to(candles, second.last_candle_seq)
        got_factors = await read_up_to(factors, second.last_factor_seq)
        # The ticks are from 2013: a wall clock would close every open bucket at once. Nothing closes.
        await asyncio.sleep(1.5)
        assert engine.candle_stream.last_seq == second.last_candle_seq
        assert len(engine.aggregator.open_candles("USD_JPY")) == len(Timeframe)
        last_quote = await p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"))
        listed = await p.stub.ListInstruments(pb.ListInstrumentsRequest())
        candles.cancel()
        factors.cancel()

    aggregator = CandleAggregator()  # the in-process backtest's path: candles close on ticks only
    expected = [c for t in real_ticks for c in aggregator.on_tick(t)]
    assert (first.accepted, first.late, first.last_tick_seq) == (600, 0, 600)
    assert (second.accepted, second.late, second.last_tick_seq) == (400, 0, 1000)
    assert first.last_candle_seq == first.candles_closed > 0
    assert second.last_candle_seq == first.candles_closed + second.candles_closed == len(expected)
    assert first.last_factor_seq <= second.last_factor_seq == len(got_factors)

    assert [m.seq for m in got_candles] == list(range(1, second.last_candle_seq + 1))
    assert [m.candle for m in got_candles] == [candle_to_proto(c) for c in expected]
    for m in got_candles:  # closed by the first tick at or past the bucket's end, at that tick's time
        closing = next(t for t in real_ticks if t.time >= from_timestamp(m.candle.end_time))
        assert m.candle.HasField("closed_time") and from_timestamp(m.candle.closed_time) == closing.time
    assert [m.seq for m in got_factors] == list(range(1, second.last_factor_seq + 1))
    assert [(f.factors.timeframe, f.factors.candle_start_time) for f in got_factors] == [
        (m.candle.timeframe, m.candle.start_time) for m in got_candles]

    assert last_quote.seq == 1000 and last_quote.tick == tick_to_proto(real_ticks[-1])
    assert [(i.symbol, i.feed, i.HasField("last_tick_time")) for i in listed.instruments] == [
        ("USD_JPY", "push", True), ("EUR_USD", "push", False)]


async def test_late_ticks_are_counted_and_dropped_per_instrument(fresh_database_url):
    async with running_plane(fresh_database_url, PUSH) as p:
        candles = p.stub.StreamCandles(pb.StreamCandlesRequest(timeframes=[S5]))
        await wait_for(lambda: p.plane.engine.candle_stream.subscriber_count == 1)
        one = await p.stub.PublishTicks(publish([
            quote("USD_JPY", T0), quote("USD_JPY", T0 - timedelta(seconds=1), bid="150"),
            quote("EUR_USD", T0 - timedelta(hours=1), bid="1.17001", ask="1.17003")]))  # its own clock
        two = await p.stub.PublishTicks(publish([
            quote("USD_JPY", T0 - timedelta(milliseconds=1), bid="150"),
            quote("USD_JPY", T0, bid="157.101"),  # the same time as the last accepted one: accepted
            quote("USD_JPY", T0 + timedelta(seconds=6, milliseconds=5), bid="157.102")]))
        (closed,) = await read_up_to(candles, two.last_candle_seq)
        candles.cancel()
        late = dict(p.plane.engine.aggregator.late_ticks)

    assert (one.accepted, one.late, one.candles_closed, one.last_tick_seq) == (2, 1, 0, 2)
    assert (two.accepted, two.late, two.candles_closed, two.last_tick_seq) == (2, 1, 1, 4)
    assert late == {"USD_JPY": 2}
    assert closed.candle.tick_count == 2 and closed.candle.bid.low == 157.1  # the late 150 is in no candle
    assert from_timestamp(closed.candle.closed_time) == T0 + timedelta(seconds=6, milliseconds=5)


async def test_a_bad_tick_refuses_the_whole_request_with_a_sentence_naming_it(fresh_database_url):
    ok = quote("USD_JPY", T0)
    beyond = Timestamp(seconds=253402300800)  # past 9999-12-31
    cases = [
        ([], "ticks is empty; send at least one tick"),
        ([ok] * 10_001, "ticks holds 10,001 ticks, more than the 10,000"),
        ([ok, quote("EUR_GBP", T0)], "ticks[1].instrument 'EUR_GBP' is not an instrument of this plane; "
                                     "it takes USD_JPY, EUR_USD"),
        ([ok, quote("", T0)], "ticks[1].instrument is empty; name one of USD_JPY, EUR_USD"),
        ([ok, pb.Tick(instrument="USD_JPY", bid="157.1", ask="157.2")], "ticks[1].time is unset"),
        ([ok, pb.Tick(instrument="USD_JPY", time=beyond, bid="157.1", ask="157.2")],
         "ticks[1].time is not a valid timestamp"),
        ([ok, quote("USD_JPY", T0, bid="abc")], "ticks[1].bid 'abc' is not a positive finite decimal"),
        ([ok, quote("USD_JPY", T0, bid="0")], "ticks[1].bid '0' is not a positive finite decimal"),
        ([ok, quote("USD_JPY", T0, bid="-157.1")], "ticks[1].bid '-157.1' is not a positive"),
        ([ok, quote("USD_JPY", T0, bid="NaN")], "ticks[1].bid 'NaN' is not a positive finite decimal"),
        ([ok, quote("USD_JPY", T0, ask="Infinity")], "ticks[1].ask 'Infinity' is not a positive finite decimal"),
        ([ok, quote("USD_JPY", T0, ask="")], "ticks[1].ask '' is not a positive finite decimal"),
        ([ok, quote("USD_JPY", T0, ask="1e999")], "ticks[1].ask '1e999'"),
        ([ok, quote("USD_JPY", T0, volume="-5")], "ticks[1].volume '-5' is not a non-negative decimal"),
        ([ok, quote("USD_JPY", T0, volume="lots")], "ticks[1].volume 'lots' is not a non-negative decimal"),
        ([ok, quote("USD_JPY", T0, aggressor=7)], "ticks[1].aggressor 7 is not a side"),
    ]
    async with running_plane(fresh_database_url, PUSH) as p:
        for ticks, phrase in cases:
            await refused(p.stub.PublishTicks(pb.PublishTicksRequest(ticks=ticks)), grpc.StatusCode.INVALID_ARGUMENT,
                          phrase)
        # Nothing of the valid first ticks was ingested.
        await refused(p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY")), grpc.StatusCode.FAILED_PRECONDITION,
                      "no tick for USD_JPY has arrived yet from the push feed")
        assert p.plane.engine.tick_stream.last_seq == 0 and p.plane.engine.ticks_accepted == 0
        listed = await p.stub.ListInstruments(pb.ListInstrumentsRequest())
        assert not any(i.HasField("last_tick_time") for i in listed.instruments)

        # An empty volume is 0, an aggressor is kept.
        done = await p.stub.PublishTicks(publish([quote("USD_JPY", T0, aggressor=common_pb2.SIDE_SELL)]))
        assert (done.accepted, done.last_tick_seq, done.last_candle_seq, done.last_factor_seq) == (1, 1, 0, 0)
        got = await p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"))
        assert (got.tick.volume, got.tick.aggressor, got.seq) == ("0", common_pb2.SIDE_SELL, 1)


@pytest.mark.parametrize("env, feed", [
    ({"QUANTMESH_SYNTHETIC_START": "2026-01-05T09:00:00+00:00"}, "synthetic"),
    ({"QUANTMESH_FEED": f"replay:{TICKS}"}, f"replay:{TICKS.name}"),
])
async def test_a_plane_that_reads_its_own_feed_refuses_published_ticks(fresh_database_url, env, feed):
    async with running_plane(fresh_database_url, env) as p:
        for request in (publish([quote("USD_JPY", T0)]), pb.PublishTicksRequest()):  # refused before validation
            await refused(p.stub.PublishTicks(request), grpc.StatusCode.FAILED_PRECONDITION,
                          f"this market-data plane reads its own feed (QUANTMESH_FEED={feed}); "
                          "start it with QUANTMESH_FEED=push to publish ticks")


async def test_publishing_needs_the_service_or_operator_role_when_tokens_are_configured(fresh_database_url):
    tokens = "gw-token=gateway:service,bot-token=ma_cross:strategy,ops-token=alice:operator"
    async with running_plane(fresh_database_url, PUSH, tokens=tokens) as p:
        await refused(p.stub.PublishTicks(publish([quote("USD_JPY", T0)]), metadata=bearer_metadata("bot-token")),
                      grpc.StatusCode.PERMISSION_DENIED, "PublishTicks needs the operator or service role",
                      "ma_cross has the strategy role")
        await refused(p.stub.PublishTicks(publish([quote("USD_JPY", T0)])), grpc.StatusCode.UNAUTHENTICATED,
                      "needs a bearer token")
        by_service = await p.stub.PublishTicks(publish([quote("USD_JPY", T0)]), metadata=bearer_metadata("gw-token"))
        by_operator = await p.stub.PublishTicks(publish([quote("USD_JPY", T0 + timedelta(seconds=1))]),
                                                metadata=bearer_metadata("ops-token"))
        assert (by_service.accepted, by_operator.accepted, by_operator.last_tick_seq) == (1, 1, 2)
        # The other calls keep needing only a valid token.
        got = await p.stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"), metadata=bearer_metadata("bot-token"))
        assert got.seq == 2


async def test_concurrent_requests_never_interleave_their_ticks(fresh_database_url, real_ticks):
    usd = [FeedTick("USD_JPY", T0 + timedelta(milliseconds=100 * i), t.bid, t.ask)
           for i, t in enumerate(real_ticks * 10)]
    eur = [FeedTick("EUR_USD", T0 + timedelta(seconds=i), t.bid / 100, t.ask / 100) for i, t in enumerate(real_ticks)]
    async with running_plane(fresh_database_url, PUSH) as p:
        engine = p.plane.engine
        usd_call = asyncio.ensure_future(p.stub.PublishTicks(publish(usd)))
        # The second request arrives while the first is being ingested (which yields to the event
        # loop every few hundred ticks); only the lock keeps their ticks apart.
        await wait_for(lambda: engine.tick_stream.last_seq > 0)
        eur_done = await p.stub.PublishTicks(publish(eur))
        usd_done = await usd_call
        assert engine.tick_stream.last_seq == 11_000
        stream = p.stub.StreamTicks(pb.StreamTicksRequest(instruments=["EUR_USD"], resume_after_seq=0))
        eur_seqs = [(await stream.read()).seq for _ in range(1000)]
        stream.cancel()
    assert (usd_done.accepted, usd_done.last_tick_seq) == (10_000, 10_000)
    assert (eur_done.accepted, eur_done.last_tick_seq) == (1000, 11_000)
    assert eur_seqs == list(range(10_001, 11_001))


async def test_closed_time_survives_storage_and_candles_stored_before_it_read_back_without_it(
        fresh_database_url, tmp_path, real_ticks):
    # A database as it was before migration 0002, holding one candle with no closed_time.
    before = tmp_path / "migrations"
    before.mkdir()
    shutil.copy(MIGRATIONS / "0001_market_data.sql", before)
    pool = await connect_pool(fresh_database_url, max_size=2)
    try:
        await apply_migrations(pool, SCHEMA, before)
        await pool.execute(
            f"INSERT INTO {SCHEMA}.candles (seq, instrument, timeframe, start_time, end_time, bid_open, bid_high, "
            "bid_low, bid_close, ask_open, ask_high, ask_low, ask_close, mid_open, mid_high, mid_low, mid_close, "
            "tick_count, volume) VALUES (1, 'EUR_USD', 'M1', $1, $2, 1.3, 1.3, 1.3, 1.3, 1.4, 1.4, 1.4, 1.4, "
            "1.35, 1.35, 1.35, 1.35, 1, 0)", T0 - timedelta(days=1, seconds=1), T0 - timedelta(days=1, seconds=-59))
    finally:
        await pool.close()

    async with running_plane(fresh_database_url, PUSH) as p:  # applies 0002
        done = await p.stub.PublishTicks(publish(real_ticks))
    aggregator = CandleAggregator()
    expected = [candle_to_proto(c) for t in real_ticks for c in aggregator.on_tick(t)]
    assert done.candles_closed == len(expected) and done.last_candle_seq == len(expected) + 1  # after the old row

    async with running_plane(fresh_database_url, PUSH) as p:  # a restart: everything comes from PostgreSQL
        stored = []
        for timeframe in (common_pb2.TIMEFRAME_S5, M1, common_pb2.TIMEFRAME_M5):
            page = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=timeframe, limit=5000))
            stored += page.candles
        (old,) = (await p.stub.GetCandles(pb.GetCandlesRequest(instrument="EUR_USD", timeframe=M1))).candles
        (old_domain,) = await p.plane.repository.candles_since("EUR_USD", Timeframe.M1, T0 - timedelta(days=2))
        # The plane resumes after the candles it stored: a tick from before their end is late.
        again = await p.stub.PublishTicks(publish(real_ticks[:1]))

    key = lambda c: (c.timeframe, c.start_time.ToDatetime())  # noqa: E731
    wanted = sorted((c for c in expected if c.timeframe in (S5, M1, common_pb2.TIMEFRAME_M5)), key=key)
    assert sorted(stored, key=key) == wanted and all(c.HasField("closed_time") for c in stored)
    assert not old.HasField("closed_time") and old.closed and old_domain.closed_time is None
    assert (again.accepted, again.late) == (0, 1)
