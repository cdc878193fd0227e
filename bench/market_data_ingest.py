"""Market-data benchmark: ingest throughput, candle fan-out over gRPC, tick-to-candle latency.

    ./qm python bench/market_data_ingest.py [--ticks 60000]

Prints figures only (never asserts). Everything runs in this one process on loopback:
the plane's engine and gRPC server, and the subscribers as gRPC clients sharing the same
event loop, so the fan-out figures include the clients' own decoding cost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "gen")]

import grpc  # noqa: E402

from quantmesh.common.v1 import common_pb2  # noqa: E402
from quantmesh.market_data.v1 import market_data_pb2 as pb  # noqa: E402
from quantmesh.market_data.v1 import market_data_pb2_grpc  # noqa: E402
from services.common.auth import TokenTable  # noqa: E402
from services.common.server import GrpcHost, binding  # noqa: E402
from services.common.streams import Broadcaster  # noqa: E402
from services.common.telemetry import setup_tracing  # noqa: E402
from services.market_data.candles import CandleAggregator  # noqa: E402
from services.market_data.engine import MarketDataEngine  # noqa: E402
from services.market_data.factors import FactorEngine  # noqa: E402
from services.market_data.feeds.synthetic import SyntheticFeed  # noqa: E402
from services.market_data.instruments import spec_for  # noqa: E402
from services.market_data.server import MarketDataService  # noqa: E402

START = datetime(2026, 1, 5, tzinfo=timezone.utc)


def synthetic_ticks(count: int):
    return list(itertools.islice(SyntheticFeed(("USD_JPY",), seed=7, start=START).generate(), count))


def make_engine(queue: int) -> MarketDataEngine:
    return MarketDataEngine(
        instruments=[spec_for("USD_JPY")], feed_name="synthetic", aggregator=CandleAggregator(),
        factors=FactorEngine(), tick_stream=Broadcaster(name="tick", ring_size=10_000, queue_size=queue),
        candle_stream=Broadcaster(name="candle", ring_size=10_000, queue_size=queue),
        factor_stream=Broadcaster(name="factor", ring_size=10_000, queue_size=queue), tick_window=10_000)


def bench_ingest(ticks) -> None:
    engine = make_engine(1_000)
    started = time.perf_counter()
    for tick in ticks:
        engine.on_tick(tick)
    elapsed = time.perf_counter() - started
    print(f"ingest: {len(ticks):,} synthetic ticks, 6 timeframes, default factor set (9 factors, 13 values): "
          f"{len(ticks) / elapsed:,.0f} ticks/s; {engine.candle_stream.last_seq:,} candles closed "
          f"({engine.candle_stream.last_seq / elapsed:,.0f} candles/s with factors)")


async def serve_engine(engine: MarketDataEngine) -> GrpcHost:
    host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable.parse(""), policy={}, grace_seconds=0.5,
                    bindings=[binding(pb, "MarketData", market_data_pb2_grpc.add_MarketDataServicer_to_server,
                                      MarketDataService(engine, repository=None))])
    await host.start()
    return host


async def bench_fanout(ticks, subscribers: int) -> None:
    engine = make_engine(1_000_000)
    host = await serve_engine(engine)
    channels = [grpc.aio.insecure_channel(host.address) for _ in range(subscribers)]
    try:
        # Candles closed by the whole run, counted beforehand with a throwaway aggregator.
        counter = CandleAggregator()
        expected = sum(len(counter.on_tick(t)) for t in ticks)
        ready = asyncio.Event()

        async def subscribe(channel):
            call = market_data_pb2_grpc.MarketDataStub(channel).StreamCandles(pb.StreamCandlesRequest())
            received = 0
            async for _ in call:
                received += 1
                if received == expected:
                    call.cancel()
                    return time.perf_counter()

        tasks = [asyncio.create_task(subscribe(c)) for c in channels]
        while engine.candle_stream.subscriber_count < subscribers:
            await asyncio.sleep(0.01)
        del ready
        started = time.perf_counter()
        for i, tick in enumerate(ticks, start=1):
            engine.on_tick(tick)
            if i % 64 == 0:
                await asyncio.sleep(0)
        finished = await asyncio.gather(*tasks)
        elapsed = max(finished) - started
        print(f"fan-out: {subscribers:>2} subscriber(s): {expected * subscribers / elapsed:,.0f} candle events/s "
              f"delivered ({expected:,} candles each, {elapsed:.2f} s incl. ingest)")
    finally:
        for channel in channels:
            await channel.close()
        await host.stop()


async def bench_latency(ticks, subscribers: int, pace_seconds: float) -> None:
    engine = make_engine(100_000)
    host = await serve_engine(engine)
    channels = [grpc.aio.insecure_channel(host.address) for _ in range(subscribers)]
    arrived: dict[int, float] = {}
    latencies: list[float] = []
    try:
        async def subscribe(channel):
            call = market_data_pb2_grpc.MarketDataStub(channel).StreamCandles(
                pb.StreamCandlesRequest(timeframes=[common_pb2.TIMEFRAME_S5, common_pb2.TIMEFRAME_M1]))
            async for message in call:
                latencies.append(time.perf_counter() - arrived[message.seq])

        tasks = [asyncio.create_task(subscribe(c)) for c in channels]
        while engine.candle_stream.subscriber_count < subscribers:
            await asyncio.sleep(0.01)
        for tick in ticks:
            before = engine.candle_stream.last_seq
            t0 = time.perf_counter()  # the tick's arrival at the plane
            engine.on_tick(tick)
            for seq in range(before + 1, engine.candle_stream.last_seq + 1):
                arrived[seq] = t0
            await asyncio.sleep(pace_seconds)
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        latencies.sort()
        p50 = statistics.median(latencies) * 1e3
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1e3
        print(f"latency tick -> closed-candle event at subscriber ({subscribers} subscriber(s), a tick every "
              f"{pace_seconds * 1e3:.0f} ms, {len(latencies):,} events): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        for channel in channels:
            await channel.close()
        await host.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=60_000)
    args = parser.parse_args()
    setup_tracing("market-data-bench", None)  # spans are created (as live), exported nowhere
    ticks = synthetic_ticks(args.ticks)
    bench_ingest(ticks)
    for subscribers in (1, 10, 25):
        await bench_fanout(ticks[: args.ticks // 3], subscribers)
    await bench_latency(ticks[:3_000], 1, 0.002)
    await bench_latency(ticks[:3_000], 10, 0.002)


if __name__ == "__main__":
    asyncio.run(main())
