"""Order.Submit throughput and latency with durable PostgreSQL writes.

Starts a control process and an order process on loopback (DATABASE_URL, or an
embedded PostgreSQL in a temporary directory), then submits buy limit orders far
below the market (limit 1.000 on USD_JPY) so nothing fills: every Submit does the
full path (validate, idempotency, guard, risk on the own book, PENDING_SUBMIT ->
SUBMITTED -> NEW, each a committed PostgreSQL transaction, plus the paper venue's
own write). Positions come from the order plane's own book
(QUANTMESH_POSITIONS_SOURCE=own_book), so no position plane is needed.

    python bench/order_submit.py [--orders 400] [--clients 1 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quantmesh.common.v1 import common_pb2  # noqa: E402
from quantmesh.order.v1 import order_pb2, order_pb2_grpc  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from services.common.db import create_database  # noqa: E402
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
            started = time.perf_counter()
            await stub.Submit(order_pb2.SubmitRequest(intent=limit_intent(f"{tag}-{n}")))
            latencies.append(time.perf_counter() - started)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = order_pb2_grpc.OrderStub(channel)
        await stub.Submit(order_pb2.SubmitRequest(intent=limit_intent(f"{tag}-warmup")))
        started = time.perf_counter()
        await asyncio.gather(*(client(stub) for _ in range(clients)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400, help="orders per round")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    embedded = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        from services.common.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="order-bench-")) / "pg", fresh=True)
        admin_url = embedded.start()
    database_url = asyncio.run(create_database(admin_url, prefix="bench"))
    logs = ROOT / ".quantmesh" / "bench-logs"
    control_addr, order_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    control = PlaneProcess("services.control", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": control_addr},
                           logs).start()
    order = None
    try:
        control.wait_healthy(control_addr)
        order = PlaneProcess("services.order", {
            "DATABASE_URL": database_url, "QUANTMESH_LISTEN": order_addr, "QUANTMESH_CONTROL_ADDR": control_addr,
            "QUANTMESH_MARKET_DATA_ADDR": f"127.0.0.1:{free_port()}", "QUANTMESH_POSITIONS_SOURCE": "own_book",
            "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "100000", "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1e12",
            "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1e12", "QUANTMESH_BROKER_RATE": "100000",
            "QUANTMESH_LOG_LEVEL": "WARNING"}, logs).start()
        order.wait_healthy(order_addr)
        print(f"Order.Submit, buy limits far from the market (nothing fills), {args.orders} orders per round, "
              "durable PostgreSQL writes")
        for clients in args.clients:
            elapsed, latencies = asyncio.run(run_round(order_addr, clients, args.orders, f"c{clients}"))
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
            print(f"  clients={clients:>2}  {len(latencies) / elapsed:8.1f} orders/s   p50 {p50:6.2f} ms   "
                  f"p99 {p99:6.2f} ms")
    finally:
        if order is not None:
            order.terminate()
        control.terminate()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
