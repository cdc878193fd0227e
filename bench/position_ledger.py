"""Position plane figures: fills/s of the pure Ledger and of the real consumer (WatchFills ->
engine -> one PostgreSQL transaction per fill), and Snapshot latency over gRPC with
25 strategies x 3 instruments open. Prints figures; asserts nothing.

    ./qm python bench/position_ledger.py [--fills 2000] [--ledger-fills 100000] [--snapshots 2000]

Uses DATABASE_URL when set, else an embedded PostgreSQL (as the tests do). The order
plane is the loopback test double from tests/integration/position/fake_order_feed.py.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from quantmesh.position.v1 import position_pb2, position_pb2_grpc  # noqa: E402
from services.common.auth import TokenTable  # noqa: E402
from services.common.clock import WallClock  # noqa: E402
from services.common.db import apply_migrations, connect_pool  # noqa: E402
from services.common.server import GrpcHost, binding  # noqa: E402
from services.position.__main__ import MIGRATIONS  # noqa: E402
from services.position.engine import PositionEngine  # noqa: E402
from services.position.feeds import BrokerPositionsClient, FillFollower, cancel_all  # noqa: E402
from services.position.ledger import Ledger, LedgerFill, Mark  # noqa: E402
from services.position.repository import PostgresLedgerStore  # noqa: E402
from services.position.server import AUTH_POLICY, PositionServicer  # noqa: E402
from tests.integration.position.fake_order_feed import FakeOrderFeed  # noqa: E402
from services.common.db import create_database  # noqa: E402
from tests.support.postgres import start_test_postgres  # noqa: E402

STRATEGIES = [f"strat_{i:02d}" for i in range(25)]
INSTRUMENTS = ["USD_JPY", "EUR_JPY", "BTC_JPY"]
T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def bench_pure_ledger(count: int) -> None:
    ledger = Ledger(starting_cash=Decimal("10000000"))
    fills = [LedgerFill(fill_id=f"f{n}", account="paper", instrument=INSTRUMENTS[n % 3],
                        strategy=STRATEGIES[(n // 3) % 25], side="buy" if (n // 75) % 3 else "sell",
                        quantity=Decimal(1000 + n % 7), price=Decimal("150.000") + Decimal(n % 50) / 1000,
                        commission=Decimal("1.5"), time=T0 + timedelta(milliseconds=n)) for n in range(count)]
    started = time.perf_counter()
    for item in fills:
        ledger.apply_fill(item)
    elapsed = time.perf_counter() - started
    print(f"pure Ledger.apply_fill: {count} fills in {elapsed:.3f} s = {count / elapsed:,.0f} fills/s "
          f"({1e6 * elapsed / count:.1f} us/fill, 75 positions)")
    started = time.perf_counter()
    for n in range(count // 10):
        ledger.apply_mark(Mark(INSTRUMENTS[n % 3], Decimal("150.01"), Decimal("150.02"), T0))
    elapsed = time.perf_counter() - started
    print(f"pure Ledger.apply_mark: {count // 10 / elapsed:,.0f} marks/s (75 open positions)")


async def bench_service(fill_count: int, snapshot_count: int) -> None:
    admin_url, embedded = await asyncio.to_thread(start_test_postgres)
    feed = FakeOrderFeed()
    try:
        database_url = await create_database(admin_url, prefix="bench_position")
        order_address = await feed.start()
        for n in range(fill_count):
            # every (strategy, instrument) opens first, then adds and trims, so all 75 stay open
            await feed.add_fill(side="buy" if n < 75 or n % 2 else "sell", quantity="1000" if n < 75 else "100",
                                price=f"150.{n % 100:03d}", commission="1.5", strategy=STRATEGIES[(n // 3) % 25],
                                instrument=INSTRUMENTS[n % 3])
        pool = await connect_pool(database_url)
        await apply_migrations(pool, "positions", MIGRATIONS)
        engine = await PositionEngine.open(store=PostgresLedgerStore(pool), clock=WallClock(),
                                           starting_cash=Decimal("10000000"), default_account="paper", currency="JPY")
        started = time.perf_counter()
        task = asyncio.create_task(FillFollower(engine, order_address).run())
        while engine.last_fill_seq < fill_count:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        print(f"consumer WatchFills -> ledger -> PostgreSQL (one transaction per fill): {fill_count} fills in "
              f"{elapsed:.2f} s = {fill_count / elapsed:,.0f} fills/s")

        broker = BrokerPositionsClient(order_address)
        host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable(), policy=AUTH_POLICY, bindings=[
            binding(position_pb2, "Position", position_pb2_grpc.add_PositionServicer_to_server,
                    PositionServicer(engine, broker))])
        await host.start()
        async with grpc.aio.insecure_channel(host.address) as channel:
            stub = position_pb2_grpc.PositionStub(channel)
            for label, request in (("all 75 positions", position_pb2.SnapshotRequest()),
                                   ("one strategy (3 positions)",
                                    position_pb2.SnapshotRequest(strategy_slugs=[STRATEGIES[7]]))):
                reply = await stub.Snapshot(request)
                timings = []
                for _ in range(snapshot_count):
                    t = time.perf_counter()
                    await stub.Snapshot(request)
                    timings.append((time.perf_counter() - t) * 1000)
                timings.sort()
                p99 = timings[int(len(timings) * 0.99) - 1]
                print(f"Snapshot over gRPC, {label} ({len(reply.positions)} returned): "
                      f"p50 {statistics.median(timings):.3f} ms, p99 {p99:.3f} ms over {snapshot_count} calls")
        await host.stop()
        await cancel_all([task])
        await broker.close()
        await engine.close()
        await pool.close()
    finally:
        await feed.stop()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=2000)
    parser.add_argument("--ledger-fills", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=2000)
    args = parser.parse_args()
    bench_pure_ledger(args.ledger_fills)
    asyncio.run(bench_service(args.fills, args.snapshots))


if __name__ == "__main__":
    main()
