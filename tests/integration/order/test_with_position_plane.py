"""Risk on the real position plane's ledger (Position.WatchExposure), fed by this plane's WatchFills."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.integration.order.conftest import LOG_DIR, OrderPlane, intent, order_stub, wait_for_state
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

S = order_pb2


@pytest.fixture(scope="module")
def planes(order_env, database_url):
    position_addr = f"127.0.0.1:{free_port()}"
    order = OrderPlane({**order_env, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": position_addr,
                        "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "5000"}).start()
    position = PlaneProcess("services.position", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr,
                                                  "QUANTMESH_ORDER_ADDR": order.address,
                                                  "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"]},
                            LOG_DIR).start()
    position.wait_healthy(position_addr)
    yield order, position_addr
    position.terminate()
    order.stop()


async def submit_once_exposure_is_fresh(stub, make_intent, timeout: float = 20.0) -> order_pb2.SubmitResponse:
    """The order plane refuses entries until the position plane's exposure view reaches it
    (both planes start with backoff); each refusal is recorded, so each try is a new id."""
    deadline = time.monotonic() + timeout
    for n in range(1000):
        try:
            return await stub.Submit(S.SubmitRequest(intent=make_intent(n)))
        except grpc.aio.AioRpcError as exc:
            if "risk.exposure_stale" not in (exc.details() or "") or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    raise AssertionError("unreachable")


async def test_the_strategy_limit_is_checked_against_the_ledger(planes):
    order, position_addr = planes
    async with grpc.aio.insecure_channel(order.address) as channel, \
            grpc.aio.insecure_channel(position_addr) as ledger_channel:
        stub, ledger = order_stub(channel), position_pb2_grpc.PositionStub(ledger_channel)
        first = await submit_once_exposure_is_fresh(stub, lambda n: intent(f"ledger-1-{n}", strategy_slug="ledgered",
                                                                           quantity="4000"))
        assert first.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)
        await wait_for_state(stub, first.order.intent.client_order_id, {S.ORDER_STATE_FILLED})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the ledger applies the fill from WatchFills
            snapshot = await ledger.Snapshot(position_pb2.SnapshotRequest(strategy_slugs=["ledgered"]))
            if snapshot.positions and snapshot.positions[0].quantity == "4000":
                break
            await asyncio.sleep(0.2)
        assert snapshot.positions[0].quantity == "4000"
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Submit(S.SubmitRequest(intent=intent("ledger-2", strategy_slug="ledgered", quantity="2000")))
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "risk.max_position_per_strategy" in error.value.details()
        assert "from 4000 to 6000" in error.value.details()
