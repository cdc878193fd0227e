"""Resume with resume_after_seq (memory and database) and slow-subscriber isolation, over real gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from quantmesh.market_data.v1 import market_data_pb2_grpc as pb_grpc
from services.market_data.feeds.replay import BarFilesFeed
from tests.integration.market_data.conftest import GatedFeed, bar_files, running_plane

MAX = {"QUANTMESH_REPLAY_SPEED": "max"}


async def wait_for(predicate, timeout=60.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def read_n(call, n):
    return [await call.read() for _ in range(n)]


async def read_on(call, into: list) -> None:
    while True:
        into.append(await call.read())


async def test_a_subscriber_that_disconnects_and_resumes_gets_every_event_exactly_once(fresh_database_url, tmp_path):
    ticks = [t async for t in BarFilesFeed(*bar_files(tmp_path, 400)).ticks()]
    feed = GatedFeed(ticks)
    # A ring of 30 events makes the resume reach back into PostgreSQL, not only memory.
    async with running_plane(fresh_database_url, {**MAX, "QUANTMESH_STREAM_RING": "30"}, feed=feed) as p:
        engine = p.plane.engine
        feed.release(400)
        await wait_for(lambda: feed.delivered == 400)
        candles = p.stub.StreamCandles(pb.StreamCandlesRequest(resume_after_seq=0))
        factors = p.stub.StreamFactors(pb.StreamFactorsRequest(timeframes=[common_pb2.TIMEFRAME_M1],
                                                               resume_after_seq=0))
        got_candles = await read_n(candles, 50)
        got_factors = await read_n(factors, 10)
        candles.cancel()
        factors.cancel()
        await wait_for(lambda: engine.candle_stream.subscriber_count == 0 and engine.factor_stream.subscriber_count == 0)

        feed.release(600)  # published while this subscriber is away
        await wait_for(lambda: feed.consumed == 1000)
        await p.plane.recorder.flush()
        away = engine.candle_stream.last_seq  # the resume replays up to here, from PostgreSQL and the ring
        candles = p.stub.StreamCandles(pb.StreamCandlesRequest(resume_after_seq=got_candles[-1].seq))
        factors = p.stub.StreamFactors(pb.StreamFactorsRequest(timeframes=[common_pb2.TIMEFRAME_M1],
                                                               resume_after_seq=got_factors[-1].seq))
        while got_candles[-1].seq < away:
            got_candles.append(await candles.read())
        reading = asyncio.create_task(read_on(candles, got_candles))  # keeps up, as a live subscriber does
        feed.release(600)  # and live events after the replay
        # Every released tick processed and its candles stored: the stream's last seq is final.
        await wait_for(lambda: feed.consumed == 1600)
        await p.plane.recorder.flush()
        last_candle = engine.candle_stream.last_seq
        await wait_for(lambda: got_candles[-1].seq >= last_candle or reading.done())
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        m1_closed = sum(m.candle.timeframe == common_pb2.TIMEFRAME_M1 for m in got_candles)
        while len(got_factors) < m1_closed:
            got_factors.append(await asyncio.wait_for(factors.read(), 10))
        candles.cancel()
        factors.cancel()

    assert [m.seq for m in got_candles] == list(range(1, last_candle + 1))  # no gap, no duplicate
    assert len(got_candles) > 400
    assert all(m.trace_context.traceparent.startswith("00-") for m in got_candles)
    factor_seqs = [m.seq for m in got_factors]
    assert factor_seqs == sorted(set(factor_seqs))  # increasing, no duplicate
    assert all(m.factors.timeframe == common_pb2.TIMEFRAME_M1 for m in got_factors)
    m1_candles = [m.candle for m in got_candles if m.candle.timeframe == common_pb2.TIMEFRAME_M1]
    assert [f.factors.candle_start_time for f in got_factors] == [c.start_time for c in m1_candles]
    assert "rsi_14" in got_factors[-1].factors.values and "sma_50" in got_factors[-1].factors.values


async def test_a_slow_subscriber_is_cut_off_with_resource_exhausted_and_never_delays_a_fast_one(
        fresh_database_url, tmp_path):
    ticks = [t async for t in BarFilesFeed(*bar_files(tmp_path, 2500)).ticks()]  # 10,000 ticks
    feed = GatedFeed(ticks)
    async with running_plane(fresh_database_url, {**MAX, "QUANTMESH_STREAM_QUEUE": "600"}, feed=feed) as p:
        engine = p.plane.engine
        # Its own connection, with the window auto-tuning off, so that gRPC's buffers fill and the
        # plane's bounded queue for it is what overflows (as for a subscriber on a slow link).
        slow_channel = grpc.aio.insecure_channel(p.host.address, options=[("grpc.http2.bdp_probe", 0)])
        slow = pb_grpc.MarketDataStub(slow_channel).StreamTicks(pb.StreamTicksRequest())  # never read until the end
        fast = p.stub.StreamTicks(pb.StreamTicksRequest(instruments=["USD_JPY"]))
        await wait_for(lambda: engine.tick_stream.subscriber_count == 2)
        received: list[int] = []

        async def read_fast():
            async for message in fast:
                received.append(message.seq)

        reader = asyncio.create_task(read_fast())
        for released in range(250, len(ticks) + 1, 250):
            feed.release(250)
            await wait_for(lambda: len(received) == released)
        assert received == list(range(1, len(ticks) + 1))
        assert engine.tick_stream.dropped_subscribers == 1

        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for message in slow:
                assert message.seq < len(ticks)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "fell more than 600 tick events behind" in err.value.details()
        assert "resume with resume_after_seq=" in err.value.details()
        reader.cancel()
        await slow_channel.close()
