"""The position plane against the REAL order plane process (no test double): it follows
WatchFills and reconciles against the paper broker's GetBrokerPositions."""

from __future__ import annotations

import asyncio
import importlib.util

import grpc
import pytest

from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

pytestmark = pytest.mark.skipif(importlib.util.find_spec("services.order.__main__") is None,
                                reason="the order plane is not runnable yet")


def last_fill_stream_line(plane: PlaneProcess) -> str:
    lines = [line for line in plane.tail(400).splitlines()
             if '"following fills"' in line or "fill stream from the order plane lost" in line]
    return "following fills" if lines and '"following fills"' in lines[-1] else "lost"


async def test_reconcile_against_the_real_order_plane(database_url, tmp_path):
    order_address = f"127.0.0.1:{free_port()}"
    position_address = f"127.0.0.1:{free_port()}"
    nowhere = f"127.0.0.1:{free_port()}"
    common = {"DATABASE_URL": database_url, "QUANTMESH_MARKET_DATA_ADDR": nowhere, "QUANTMESH_CONTROL_ADDR": nowhere}
    order = PlaneProcess("services.order", {**common, "QUANTMESH_LISTEN": order_address,
                                            "QUANTMESH_POSITIONS_SOURCE": "own_book"}, tmp_path).start()
    position = PlaneProcess("services.position", {**common, "QUANTMESH_LISTEN": position_address,
                                                  "QUANTMESH_ORDER_ADDR": order_address}, tmp_path).start()
    try:
        await asyncio.to_thread(order.wait_healthy, order_address)
        await asyncio.to_thread(position.wait_healthy, position_address)
        async with grpc.aio.insecure_channel(position_address) as channel:
            stub = position_pb2_grpc.PositionStub(channel)
            report = await stub.Reconcile(position_pb2.ReconcileRequest())
            assert report.broker == "paper"
            assert report.in_sync and list(report.differences) == []
            snapshot = await stub.Snapshot(position_pb2.SnapshotRequest())
            assert snapshot.last_fill_seq == 0 and list(snapshot.positions) == []
        # The fill follower may have started before the order plane listened; once it is up, the
        # follower's latest word must be a live subscription, not another lost stream.
        for _ in range(60):
            if last_fill_stream_line(position) == "following fills":
                await asyncio.sleep(1.0)
                if last_fill_stream_line(position) == "following fills":
                    break
            await asyncio.sleep(0.25)
        assert last_fill_stream_line(position) == "following fills", position.tail(40)
    finally:
        await asyncio.to_thread(position.kill)
        await asyncio.to_thread(order.kill)
