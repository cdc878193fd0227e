"""Order.Submit throughput and latency with durable PostgreSQL writes, against a bare gRPC floor.

Starts, on loopback, a control process, a bare grpc.aio echo server (bench/echo_server.py:
the floor, no interceptors and no work) and order processes (DATABASE_URL, or an
embedded PostgreSQL in a temporary directory), then drives each with the same client
loop: buy limit orders far below the market (limit 1.000 on USD_JPY), so nothing fills
and every Submit does the full path: validate, pre-trade (guard and risk from local
state), journal (PENDING_SUBMIT + SUBMITTED in one group commit), the paper venue's own
durable write, the journal again (NEW). Positions come from the order plane's own book
(QUANTMESH_POSITIONS_SOURCE=own_book), so no position plane is needed.

The order plane runs twice: with no collector (the default without
OTEL_EXPORTER_OTLP_ENDPOINT: nothing recorded, trace ids still carried), and exporting
every span to an in-process OTLP receiver, so the cost of tracing per order is a
difference measured in one run. PostgreSQL commits per Submit come from
pg_stat_database (xact_commit) around each round.

The floor of the database: 8 (or --clients) plain asyncpg clients make, per order, the three
commits a Submit makes, in the same order and with the same durability, without the plane:
the journal's own statement for PENDING_SUBMIT + SUBMITTED (services/order/repository.py,
waiting for the WAL flush), a one-row insert on a connection that does not wait for it (the
paper venue's accept), the journal's statement for NEW (waiting again). No group commit: each
order pays its own three, so this is what PostgreSQL allows an order plane that shares nothing.

SubmitStream (one call per client; 1 intent in flight per client, as with Submit, then 16)
and SubmitBatch (100 intents per call) run on the default variant too: the same orders
without a gRPC call each. SubmitBatch's CPU per order is the plane's own work on an order,
with neither a call nor a commit of its own: the part of an order no transport change removes.

    ./qm python bench/order_submit.py [--orders 4000] [--clients 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import grpc
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quantmesh.common.v1 import common_pb2  # noqa: E402
from quantmesh.order.v1 import order_pb2, order_pb2_grpc  # noqa: E402
from services.common.db import create_database  # noqa: E402
from tests.support.otlp import OtlpReceiver  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import PlaneProcess  # noqa: E402


def limit_intent(cid: str) -> order_pb2.OrderIntent:
    return order_pb2.OrderIntent(
        client_order_id=cid, strategy_slug="bench", role=common_pb2.STRATEGY_ROLE_ENTRY, instrument="USD_JPY",
        side=common_pb2.SIDE_BUY, quantity="1000", order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
        time_in_force=order_pb2.TIME_IN_FORCE_GTC)


async def run_round(address: str, clients: int, orders: int, tag: str) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(orders))

    async def client(stub) -> None:
        for n in counter:
            request = order_pb2.SubmitRequest(intent=limit_intent(f"{tag}-{n}"))
            started = time.perf_counter()
            await stub.Submit(request)
            latencies.append(time.perf_counter() - started)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_pb2_grpc.OrderStub(channel)
        for n in range(50):  # warm up: connections, caches, the JIT of nothing
            await stub.Submit(order_pb2.SubmitRequest(intent=limit_intent(f"{tag}-warmup-{n}")))
        started = time.perf_counter()
        await asyncio.gather(*(client(stub) for _ in range(clients)))
        return time.perf_counter() - started, latencies


async def run_batches(address: str, clients: int, orders: int, tag: str, size: int) -> tuple[float, list[float]]:
    """The same orders through SubmitBatch, `size` intents per call; latency is per call."""
    latencies: list[float] = []
    counter = iter(range(0, orders, size))

    async def client(stub) -> None:
        for first in counter:
            request = order_pb2.SubmitBatchRequest(
                intents=[limit_intent(f"{tag}-{n}") for n in range(first, min(first + size, orders))])
            started = time.perf_counter()
            reply = await stub.SubmitBatch(request)
            latencies.append(time.perf_counter() - started)
            assert all(r.status == "OK" for r in reply.results), reply.results[0]

    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_pb2_grpc.OrderStub(channel)
        started = time.perf_counter()
        await asyncio.gather(*(client(stub) for _ in range(clients)))
        return time.perf_counter() - started, latencies


async def run_stream(address: str, clients: int, orders: int, tag: str, depth: int) -> tuple[float, list[float]]:
    """The same orders through SubmitStream: one call per client, `depth` intents in flight on each
    (1: each waits for the answer before the next, as a client of Submit would); latency per intent."""
    latencies: list[float] = []
    counter = iter(range(orders))

    async def client(stub) -> None:
        room = asyncio.Semaphore(depth)
        sent: dict[str, float] = {}

        async def intents():
            for n in counter:
                await room.acquire()
                cid = f"{tag}-{n}"
                sent[cid] = time.perf_counter()
                yield order_pb2.SubmitStreamRequest(intent=limit_intent(cid))

        async for reply in stub.SubmitStream(intents()):
            latencies.append(time.perf_counter() - sent.pop(reply.client_order_id))
            assert reply.result.status == "OK", reply.result
            room.release()

    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_pb2_grpc.OrderStub(channel)
        started = time.perf_counter()
        await asyncio.gather(*(client(stub) for _ in range(clients)))
        return time.perf_counter() - started, latencies


async def run_database_floor(database_url: str, clients: int, orders: int) -> tuple[float, list[float], float]:
    """The three commits of a Submit from plain asyncpg clients (see the module docstring);
    (seconds, latency per order, PostgreSQL CPU seconds of the connections)."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from services.common.db import apply_migrations, connect_pool
    from services.common.vocabulary import OrderState, OrderType, Side, StrategyRole, TimeInForce
    from services.order.intents import Intent
    from services.order.records import OrderEvent, OrderRecord, TraceRef
    from services.order.repository import MIGRATIONS, JournalBatch, PostgresOrderStore

    journal = await connect_pool(database_url, min_size=clients, max_size=clients)
    venue = await connect_pool(database_url, min_size=clients, max_size=clients,
                               server_settings={"synchronous_commit": "off"})
    try:
        await apply_migrations(journal, "orders", MIGRATIONS)
        await venue.execute("CREATE TABLE IF NOT EXISTS floor_venue (client_order_id text PRIMARY KEY, body text)")
        store, trace, numbers, seqs = PostgresOrderStore(journal), TraceRef(), iter(range(1, 10**9)), iter(range(1, 10**9))
        latencies: list[float] = []
        counter = iter(range(orders))

        async def client() -> None:
            for n in counter:
                now = datetime.now(timezone.utc)
                intent = Intent(client_order_id=f"floor-{n}", strategy_slug="bench", role=StrategyRole.ENTRY,
                                instrument="USD_JPY", side=Side.BUY, quantity=Decimal(1000), order_type=OrderType.LIMIT,
                                limit_price=Decimal("1.000"), time_in_force=TimeInForce.GTC)
                pending = OrderRecord(number=next(numbers), intent=intent, state=OrderState.PENDING_SUBMIT,
                                      created_time=now, updated_time=now)
                submitted = pending.with_changes(state=OrderState.SUBMITTED, broker="paper")
                started = time.perf_counter()
                await store.write(JournalBatch(new_orders=[submitted], events=[
                    (next(seqs), OrderEvent(pending, trace)), (next(seqs), OrderEvent(submitted, trace))]))
                await venue.execute("INSERT INTO floor_venue VALUES ($1, $2)", intent.client_order_id, "accepted")
                new = submitted.with_changes(state=OrderState.NEW)
                await store.write(JournalBatch(updates=[new], events=[(next(seqs), OrderEvent(new, trace))]))
                latencies.append(time.perf_counter() - started)

        before = postgres_cpu()
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return time.perf_counter() - started, latencies, postgres_cpu() - before
    finally:
        await journal.close()
        await venue.close()


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on the machine (the embedded server's, or a local one)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        try:
            if (process.info["name"] or "").startswith("postgres"):
                total += cpu_seconds(process.pid)
        except psutil.Error:
            continue
    return total


async def commits(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used: what an order costs, whatever else the machine runs."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def report(label: str, clients: int, elapsed: float, latencies: list[float], extra: str = "") -> str:
    latencies = sorted(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return (f"  {label:<30} clients={clients:>2}  {len(latencies) / elapsed:8.0f} /s   p50 {p50:6.2f} ms   "
            f"p99 {p99:6.2f} ms{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=4000, help="orders per round")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    embedded = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        from services.common.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="order-bench-")) / "pg", fresh=True)
        admin_url = embedded.start()
    logs = ROOT / ".quantmesh" / "bench-logs"
    control_addr, echo_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    control_db = asyncio.run(create_database(admin_url, prefix="bench"))
    control = PlaneProcess("services.control", {"DATABASE_URL": control_db, "QUANTMESH_LISTEN": control_addr},
                           logs).start()
    echo = subprocess.Popen([sys.executable, str(ROOT / "bench" / "echo_server.py"), echo_addr])
    receiver = OtlpReceiver().__enter__()
    variants = [("order plane, no collector", {}),
                ("order plane, every span exported", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                                                      "OTEL_BSP_MAX_QUEUE_SIZE": "65536"})]
    try:
        control.wait_healthy(control_addr)
        print(f"Order.Submit: buy limits far from the market (nothing fills), {args.orders} per round, durable "
              f"PostgreSQL writes; {os.cpu_count()} cores shared by client, server and PostgreSQL")
        for clients in args.clients:
            cpu = cpu_seconds(echo.pid)
            elapsed, latencies = asyncio.run(run_round(echo_addr, clients, args.orders, f"echo{clients}"))
            cpu_per = (cpu_seconds(echo.pid) - cpu) / len(latencies) * 1e6
            print(report("bare grpc.aio echo (floor)", clients, elapsed, latencies, f"   {cpu_per:6.0f} us CPU/call"))
        for clients in args.clients:
            floor_db = asyncio.run(create_database(admin_url, prefix="bench"))
            elapsed, latencies, pg_cpu = asyncio.run(run_database_floor(floor_db, clients, args.orders))
            print(report("PostgreSQL alone, 3 commits", clients, elapsed, latencies,
                         f"   {pg_cpu / len(latencies) * 1e6:6.0f} us PostgreSQL CPU/order"))
        for label, extra_env in variants:
            database_url = asyncio.run(create_database(admin_url, prefix="bench"))
            order_addr = f"127.0.0.1:{free_port()}"
            order = PlaneProcess("services.order", {
                "DATABASE_URL": database_url, "QUANTMESH_LISTEN": order_addr, "QUANTMESH_CONTROL_ADDR": control_addr,
                "QUANTMESH_MARKET_DATA_ADDR": f"127.0.0.1:{free_port()}", "QUANTMESH_POSITIONS_SOURCE": "own_book",
                "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000", "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1e12",
                "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1e12", "QUANTMESH_BROKER_RATE": "1000000",
                "QUANTMESH_LOG_LEVEL": "WARNING", **extra_env}, logs).start()
            try:
                order.wait_healthy(order_addr)
                for clients in args.clients:
                    before = asyncio.run(commits(database_url))
                    cpu, pg_cpu = cpu_seconds(order.proc.pid), postgres_cpu()
                    elapsed, latencies = asyncio.run(run_round(order_addr, clients, args.orders, f"c{clients}"))
                    cpu_per = (cpu_seconds(order.proc.pid) - cpu) / len(latencies) * 1e6
                    pg_per = (postgres_cpu() - pg_cpu) / len(latencies) * 1e6
                    per_order = (asyncio.run(commits(database_url)) - before) / len(latencies)
                    print(report(label, clients, elapsed, latencies,
                                 f"   {cpu_per:6.0f} us CPU/order   {per_order:4.2f} commits/order   "
                                 f"{pg_per:6.0f} us PostgreSQL CPU/order"))
                if not extra_env:  # the stream and the batch call once, on the default variant
                    for depth in (1, 4, 16):
                        cpu = cpu_seconds(order.proc.pid)
                        elapsed, latencies = asyncio.run(run_stream(order_addr, 8, args.orders, f"s{depth}", depth))
                        cpu_per = (cpu_seconds(order.proc.pid) - cpu) / len(latencies) * 1e6
                        print(report(f"SubmitStream, {depth} in flight each", 8, elapsed, latencies,
                                     f"   {cpu_per:6.0f} us CPU/order"))
                    for clients, size in ((1, 100), (8, 100)):
                        # No gRPC call per order and a commit shared by a hundred: the plane's CPU per order
                        # here is its own work on an order (validate, pre-trade, journal, venue, answer).
                        cpu, pg_cpu = cpu_seconds(order.proc.pid), postgres_cpu()
                        elapsed, latencies = asyncio.run(run_batches(order_addr, clients, args.orders * 2,
                                                                     f"b{clients}", size))
                        cpu_per = (cpu_seconds(order.proc.pid) - cpu) / (args.orders * 2) * 1e6
                        pg_per = (postgres_cpu() - pg_cpu) / (args.orders * 2) * 1e6
                        print(f"  {'SubmitBatch of ' + str(size):<30} clients={clients:>2}  "
                              f"{args.orders * 2 / elapsed:8.0f} orders/s   per call p50 "
                              f"{statistics.median(latencies) * 1000:6.2f} ms   p99 "
                              f"{sorted(latencies)[int(len(latencies) * 0.99)] * 1000:6.2f} ms   "
                              f"{cpu_per:6.0f} us CPU/order   {pg_per:6.0f} us PostgreSQL CPU/order")
            finally:
                order.terminate()
        print(f"  spans received by the OTLP receiver: {len(receiver.spans())}")
    finally:
        receiver.__exit__(None, None, None)
        echo.terminate()
        echo.wait(5)
        control.terminate()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
