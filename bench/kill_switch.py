"""The kill switch: from SetGlobalFlags(lock) to every open order canceled at the paper venue.

Starts control and an order process (paper venue) on loopback (DATABASE_URL, or an
embedded PostgreSQL in a temporary directory). Each round rests N buy limits far below the
market, locks (cancel_open_orders, the default), and measures:
- the lock call: until SetGlobalFlags answers, which is after the order plane acknowledged
  the version (acknowledged means enforced);
- lock -> all canceled: until the paper venue's own book (schema paper_venue) shows every
  one of the N orders canceled, polled every 2 ms.
Then it unlocks for the next round. Prints figures only.

    ./qm python bench/kill_switch.py [--orders 200] [--rounds 5]
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

import asyncpg
import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quantmesh.common.v1 import common_pb2  # noqa: E402
from quantmesh.control.v1 import control_pb2, control_pb2_grpc  # noqa: E402
from quantmesh.order.v1 import order_pb2, order_pb2_grpc  # noqa: E402
from services.common.db import create_database  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import PlaneProcess  # noqa: E402


def resting(cid: str) -> order_pb2.OrderIntent:
    return order_pb2.OrderIntent(
        client_order_id=cid, strategy_slug="bench", role=common_pb2.STRATEGY_ROLE_ENTRY, instrument="USD_JPY",
        side=common_pb2.SIDE_BUY, quantity="1000", order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1.000",
        time_in_force=order_pb2.TIME_IN_FORCE_GTC)


async def run(control_addr: str, order_addr: str, database_url: str, orders: int, rounds: int) -> None:
    answers, all_canceled = [], []
    conn = await asyncpg.connect(database_url)
    async with grpc.aio.insecure_channel(control_addr) as cc, grpc.aio.insecure_channel(order_addr) as oc:
        control, order = control_pb2_grpc.ControlStub(cc), order_pb2_grpc.OrderStub(oc)
        for r in range(rounds):
            ids = [f"ks{r}-{n}" for n in range(orders)]
            for start in range(0, orders, 500):
                await order.SubmitBatch(order_pb2.SubmitBatchRequest(intents=[resting(c) for c in ids[start:start + 500]]))
            began = time.perf_counter()
            reply = await control.SetGlobalFlags(control_pb2.SetGlobalFlagsRequest(global_lock=True, reason="bench"))
            answered = time.perf_counter()
            assert reply.enforced_by and not reply.not_enforced_by, reply
            while await conn.fetchval("SELECT count(*) FROM paper_venue.orders WHERE client_order_id = ANY($1)"
                                      " AND state <> 'canceled'", ids):
                await asyncio.sleep(0.002)
            done = time.perf_counter()
            answers.append(answered - began)
            all_canceled.append(done - began)
            await control.SetGlobalFlags(control_pb2.SetGlobalFlagsRequest(global_lock=False, reason="bench"))
    await conn.close()
    ms = lambda values: f"p50 {statistics.median(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"  # noqa: E731
    print(f"kill switch, {orders} resting orders per round, {rounds} rounds")
    print(f"  SetGlobalFlags(lock) answered (enforced)   {ms(answers)}")
    print(f"  lock -> all {orders} canceled at the venue  {ms(all_canceled)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    embedded = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        from services.common.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="kill-switch-bench-")) / "pg", fresh=True)
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
            "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000", "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1e12",
            "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1e12", "QUANTMESH_BROKER_RATE": "1000000",
            "QUANTMESH_LOG_LEVEL": "WARNING"}, logs).start()
        order.wait_healthy(order_addr)
        asyncio.run(run(control_addr, order_addr, database_url, args.orders, args.rounds))
    finally:
        if order is not None:
            order.terminate()
        control.terminate()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
