"""A real `python -m services.position` process: a restart rebuilds the same ledger from
PostgreSQL and resumes the fill stream exactly after the last applied seq."""

from __future__ import annotations

import asyncio

import grpc

from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.integration.position.fake_order_feed import FakeOrderFeed
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess


async def snapshot_at(address: str, seq: int) -> position_pb2.SnapshotResponse:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = position_pb2_grpc.PositionStub(channel)
        for _ in range(300):
            reply = await stub.Snapshot(position_pb2.SnapshotRequest(include_flat=True))
            if reply.last_fill_seq >= seq:
                return reply
            await asyncio.sleep(0.05)
    raise AssertionError(f"the position process did not apply fill seq {seq}")


async def start_plane(env: dict[str, str], log_dir) -> PlaneProcess:
    plane = PlaneProcess("services.position", env, log_dir).start()
    await asyncio.to_thread(plane.wait_healthy, env["QUANTMESH_LISTEN"])
    return plane


async def test_a_restart_rebuilds_the_same_positions(database_url, tmp_path):
    feed = FakeOrderFeed()
    order_address = await feed.start()
    address = f"127.0.0.1:{free_port()}"
    env = {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_ORDER_ADDR": order_address,
           # nothing listens there: marks are optional, the follower just keeps retrying
           "QUANTMESH_MARKET_DATA_ADDR": f"127.0.0.1:{free_port()}", "QUANTMESH_STARTING_CASH": "5000000"}
    plane = None
    try:
        await feed.add_fill(side="buy", quantity="10000", price="150.00", commission="20")
        await feed.add_fill(side="buy", quantity="5000", price="151.50", commission="10")
        await feed.add_fill(side="sell", quantity="6000", price="152.00", commission="12")
        await feed.add_fill(side="sell", quantity="0.5", price="9000000", strategy="btc", instrument="BTC_JPY")
        plane = await start_plane(env, tmp_path)
        before = await snapshot_at(address, 4)
        assert [(p.strategy_slug, p.quantity, p.average_price, p.realized_pnl) for p in before.positions] == [
            ("btc", "-0.5", "9000000", "0"), ("s1", "9000", "150.5", "9000")]
        assert await asyncio.to_thread(plane.terminate) == 0

        await feed.add_fill(side="sell", quantity="9000", price="150.00", commission="18")  # seq 5, while down
        plane = await start_plane(env, tmp_path)
        after = await snapshot_at(address, 5)
        assert feed.resume_requests == [0, 4]  # resumed exactly after the last applied seq
        btc_before, s1_before = before.positions
        btc_after, s1_after = after.positions
        assert btc_after == btc_before  # untouched position rebuilt identically, times included
        # s1 closed by seq 5: (150 - 150.5) * 9000 = -4500 on top of 9000; the trip nets 4500 - 60 > 0: a win
        assert (s1_after.quantity, s1_after.realized_pnl, s1_after.commission) == ("0", "4500", "60")
        s1_summary = next(s for s in after.strategies if s.slug == "s1")
        assert (s1_summary.wins, s1_summary.losses, s1_summary.realized_pnl) == (1, 0, "4440")
        # balance = 5,000,000 + 4500 - 60
        assert after.account.balance == "5004440"
        # the peak survived the restart: 5,000,000 + 9000 - 42 before; drawdown 5,008,958 - 5,004,440
        assert before.account.peak_equity == after.account.peak_equity == "5008958"
        assert after.account.drawdown == after.account.max_drawdown == "4518"
    finally:
        if plane is not None:
            await asyncio.to_thread(plane.kill)
        await feed.stop()


async def test_a_bad_starting_cash_stops_the_process_with_a_sentence(tmp_path):
    plane = PlaneProcess("services.position", {"QUANTMESH_STARTING_CASH": "-5",
                                               "QUANTMESH_LISTEN": f"127.0.0.1:{free_port()}"}, tmp_path).start()
    code = await asyncio.to_thread(plane.proc.wait, 30)
    assert code == 2
    assert "QUANTMESH_STARTING_CASH=-5 must be a positive amount of cash" in plane.tail()
