"""Durable before delivered: kill -9 the market-data process at random points while subscribed,
restart it, resume with the last seq received: no refusal, no gap, no duplicate.

A push feed makes the test own the timeline. After each restart the publisher sends again what
the stored candles do not cover (the ticks from the end of each instrument's latest stored S5
candle on), as a real feed gateway would; older ticks are dropped by the plane as late. At the
end the candles and factor sets received, in seq order, must be exactly those an uninterrupted
aggregator and factor engine produce from the same ticks, and the seqs must run 1, 2, 3, ...
"""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import datetime, timezone
from decimal import Decimal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from quantmesh.market_data.v1 import market_data_pb2_grpc
from services.common.timeutil import from_timestamp
from services.market_data.candles import CandleAggregator
from services.market_data.factors import FactorEngine, parse_factors
from services.market_data.feeds.base import FeedTick
from services.market_data.feeds.synthetic import SyntheticFeed
from services.market_data.server import candle_to_proto, tick_to_proto
from tests.integration.market_data.conftest import running_plane
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

TRIALS = 20
INSTRUMENTS = ("USD_JPY", "BTC_JPY")
FACTORS = "sma:3,rsi:5"
MONDAY = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
ENDED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)  # the server died, or we hung up


def market_ticks(count: int) -> list[FeedTick]:
    """Synthetic quotes of two instruments, with fractional volumes so sums are not trivially exact."""
    raw = itertools.islice(SyntheticFeed(INSTRUMENTS, seed=15, start=MONDAY).generate(), count)
    return [FeedTick(t.instrument, t.time, t.bid, t.ask, t.volume / 1000 + Decimal("0.1"), t.aggressor) for t in raw]


class Subscriber:
    """A candle or factor subscriber that resumes after the last seq it received."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.received: list = []
        self.refusals: list[str] = []
        self.cut_off = 0

    @property
    def last_seq(self) -> int:
        return self.received[-1].seq if self.received else 0

    async def follow(self, stub: market_data_pb2_grpc.MarketDataStub) -> None:
        while True:
            if self.kind == "candles":
                call = stub.StreamCandles(pb.StreamCandlesRequest(resume_after_seq=self.last_seq))
            else:
                call = stub.StreamFactors(pb.StreamFactorsRequest(resume_after_seq=self.last_seq))
            try:
                async for message in call:
                    self.received.append(message)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    self.cut_off += 1  # too slow for its queue (a loaded machine): resume, as a client should
                    continue
                if exc.code() not in ENDED:
                    self.refusals.append(f"{exc.code().name}: {exc.details()}")
            return


async def serving(address: str, plane: PlaneProcess) -> None:
    """Polls health until the restarted process serves (or has died, which fails the test)."""
    async with grpc.aio.insecure_channel(address) as channel, asyncio.timeout(120):
        while True:
            assert plane.proc.poll() is None, plane.tail()
            try:
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)


async def resend_from(stub, ticks: list[FeedTick]) -> int:
    """Index of the first tick the stored candles do not cover, over every instrument."""
    first = len(ticks)
    for instrument in INSTRUMENTS:
        page = await stub.GetCandles(pb.GetCandlesRequest(instrument=instrument, timeframe=common_pb2.TIMEFRAME_S5,
                                                          latest=True, limit=1))
        covered = from_timestamp(page.candles[0].end_time) if page.candles else None
        first = min(first, next((i for i, t in enumerate(ticks) if t.instrument == instrument
                                 and (covered is None or t.time >= covered)), len(ticks)))
    return first


def publish(ticks: list[FeedTick]) -> pb.PublishTicksRequest:
    return pb.PublishTicksRequest(ticks=[tick_to_proto(t) for t in ticks])


async def kill_at_a_random_point(rng: random.Random, stub, plane: PlaneProcess, ticks: list[FeedTick],
                                 start: int, candles: Subscriber) -> None:
    """Publishes a few batches, then kills the process: between requests, while one is being
    ingested or stored, or just after some of its candles reached the subscriber."""
    sent = start
    for _ in range(rng.randint(0, 2)):
        batch = ticks[sent:sent + rng.randint(50, 400)]
        await stub.PublishTicks(publish(batch))
        sent += len(batch)
    in_flight = asyncio.ensure_future(stub.PublishTicks(publish(ticks[sent:sent + rng.randint(200, 3000)])))
    moment = rng.choice(("sent", "some candles out", "answered"))
    if moment == "some candles out":
        seen = len(candles.received)
        wanted = seen + rng.randint(1, 20)
        async with asyncio.timeout(60):
            while len(candles.received) < wanted and not in_flight.done():
                await asyncio.sleep(0)
    elif moment == "answered":
        await in_flight
    else:
        for _ in range(rng.randint(0, 50)):
            await asyncio.sleep(0)
    plane.kill()  # SIGKILL: no drain, no flush
    try:
        await in_flight
    except grpc.aio.AioRpcError as exc:
        assert exc.code() in ENDED, exc.details()


@pytest.mark.timeout(600)
async def test_kill_9_at_random_points_then_resume_with_the_last_seq_received(fresh_database_url, tmp_path):
    rng = random.Random(15)
    ticks = market_ticks(TRIALS * 1_800 + 2_000)
    address = f"127.0.0.1:{free_port()}"
    env = {"DATABASE_URL": fresh_database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_FEED": "push",
           "QUANTMESH_INSTRUMENTS": ",".join(INSTRUMENTS), "QUANTMESH_FACTORS": FACTORS,
           "QUANTMESH_GRACE_SECONDS": "1", "QUANTMESH_LOG_LEVEL": "WARNING"}
    candles, factors = Subscriber("candles"), Subscriber("factors")
    last_tick_seq = 0

    async def run(trial: int) -> tuple[int, int]:
        nonlocal last_tick_seq
        plane = PlaneProcess("services.market_data", env, tmp_path).start()
        try:
            await serving(address, plane)
            async with grpc.aio.insecure_channel(address) as channel:
                stub = market_data_pb2_grpc.MarketDataStub(channel)
                followers = [asyncio.create_task(s.follow(stub)) for s in (candles, factors)]
                start = await resend_from(stub, ticks)
                if trial < TRIALS:
                    await kill_at_a_random_point(rng, stub, plane, ticks, start, candles)
                    async with asyncio.timeout(60):
                        await asyncio.gather(*followers)
                    return start, 0
                # The last run: everything left, then read the streams up to what the answers name.
                done = None
                for i in range(start, len(ticks), 5_000):
                    done = await stub.PublishTicks(publish(ticks[i:i + 5_000]))
                async with asyncio.timeout(60):  # a follower that was refused ends: stop waiting then
                    while ((candles.last_seq < done.last_candle_seq or factors.last_seq < done.last_factor_seq)
                           and not any(f.done() for f in followers)):
                        await asyncio.sleep(0.01)
                quote = await stub.GetQuote(pb.GetQuoteRequest(instrument="USD_JPY"))
                last_tick_seq = quote.seq
                for follower in followers:
                    follower.cancel()
                return start, done.last_candle_seq
        finally:
            plane.kill()

    for trial in range(TRIALS):
        await run(trial)
    _, last_candle_seq = await run(TRIALS)

    assert candles.refusals == [] and factors.refusals == []
    # No gap, no duplicate: the seqs a subscriber saw across 20 crashes run 1, 2, 3, ...
    assert [m.seq for m in candles.received] == list(range(1, len(candles.received) + 1))
    assert [m.seq for m in factors.received] == list(range(1, len(factors.received) + 1))
    # And they are exactly the candles and factor sets of an uninterrupted run over the same ticks.
    aggregator, engine = CandleAggregator(), FactorEngine(parse_factors(FACTORS))
    expected = [c for t in ticks for c in aggregator.on_tick(t)]
    assert last_candle_seq == len(expected)
    assert [m.candle for m in candles.received] == [candle_to_proto(c) for c in expected]
    expected_factors = [(c.instrument, c.start, values) for c in expected
                        if (values := engine.on_candle(c)) is not None]
    assert [(m.factors.instrument, from_timestamp(m.factors.candle_start_time), dict(m.factors.values))
            for m in factors.received] == expected_factors
    assert last_tick_seq > 2**40 * TRIALS  # this run's ticks are numbered above every earlier run's


async def test_a_tick_resume_from_before_a_restart_is_refused_as_no_longer_retained_never_as_ahead(
        fresh_database_url):
    ticks = market_ticks(300)
    env = {"QUANTMESH_FEED": "push", "QUANTMESH_INSTRUMENTS": ",".join(INSTRUMENTS)}
    async with running_plane(fresh_database_url, env) as p:
        first = await p.stub.PublishTicks(publish(ticks[:200]))
    async with running_plane(fresh_database_url, env) as p:  # ticks live in memory: none survive a restart
        second = await p.stub.PublishTicks(publish(ticks[200:]))
        stale = p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=first.last_tick_seq))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stale.read()
        fresh = p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=second.last_tick_seq - 100))
        replayed = [await fresh.read() for _ in range(100)]
        fresh.cancel()
    assert first.last_tick_seq == 200 and second.last_tick_seq == 2**40 + 100
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"resume_after_seq {first.last_tick_seq} is older than the tick events this server retains" \
        in refused.value.details()
    assert [m.seq for m in replayed] == list(range(2**40 + 1, 2**40 + 101))
    assert [m.tick for m in replayed] == [tick_to_proto(t) for t in ticks[200:]]
