"""The daily loss limit on the real position plane's figures (Position.WatchExposure): past the
limit an entry is refused with the rule and the numbers, an exit still passes."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.integration.order.conftest import LOG_DIR, OrderPlane, intent, order_stub, wait_for_state
from tests.integration.order.test_with_position_plane import submit_once_exposure_is_fresh
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

S = order_pb2
SELL, EXIT = common_pb2.SIDE_SELL, common_pb2.STRATEGY_ROLE_EXIT


@pytest.fixture(scope="module")
def planes(order_env, database_url):
    position_addr = f"127.0.0.1:{free_port()}"
    # 1 JPY commission a unit: 15,000 JPY for the 10,000 opened and the 5,000 closed, far more than
    # USD/JPY can move 5,000 units in the seconds it takes: the day ends well past the 1,000 JPY limit.
    order = OrderPlane({**order_env, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": position_addr, "QUANTMESH_PAPER_COMMISSION_PER_UNIT": "1",
                        "QUANTMESH_RISK_MAX_DAILY_LOSS": "1000"}).start()
    position = PlaneProcess("services.position", {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr,
                                                  "QUANTMESH_ORDER_ADDR": order.address,
                                                  "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"]},
                            LOG_DIR).start()
    position.wait_healthy(position_addr)
    yield order, position_addr
    position.terminate()
    order.stop()


async def ledger_day(ledger, fill_seq: int) -> position_pb2.TradingDay:
    """The position plane's current trading day once it has applied `fill_seq`."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        snapshot = await ledger.Snapshot(position_pb2.SnapshotRequest())
        if snapshot.last_fill_seq >= fill_seq and snapshot.days:
            return snapshot.days[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"the position plane did not apply fill seq {fill_seq}")


async def test_an_entry_past_the_daily_loss_limit_is_refused_and_an_exit_passes(planes):
    order, position_addr = planes
    async with grpc.aio.insecure_channel(order.address) as channel, \
            grpc.aio.insecure_channel(position_addr) as ledger_channel:
        stub, ledger = order_stub(channel), position_pb2_grpc.PositionStub(ledger_channel)
        opened = await submit_once_exposure_is_fresh(
            stub, lambda n: intent(f"daily-open-{n}", strategy_slug="daily", quantity="10000"))
        await wait_for_state(stub, opened.order.intent.client_order_id, {S.ORDER_STATE_FILLED})
        half = await stub.Submit(S.SubmitRequest(intent=intent(
            "daily-half", strategy_slug="daily", role=EXIT, side=SELL, quantity="5000")))
        filled = await wait_for_state(stub, half.order.intent.client_order_id, {S.ORDER_STATE_FILLED})
        assert filled.order.state == S.ORDER_STATE_FILLED

        today = await ledger_day(ledger, 2)  # this module's database: the open is fill 1, the half fill 2
        loss = -Decimal(today.realized_pnl)
        assert loss > 1000  # 15,000 commission, whatever the half's own PnL was

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Submit(S.SubmitRequest(intent=intent("daily-more", strategy_slug="daily", quantity="1000")))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = refused.value.details()
        assert "risk.daily_loss_limit" in details
        assert f"realized loss today {loss} JPY (trading day {today.date}" in details
        assert "reaches max_daily_loss 1000 JPY; only position-reducing orders pass" in details
        rejected = await stub.GetOrder(S.GetOrderRequest(client_order_id="daily-more"))
        assert rejected.order.state == S.ORDER_STATE_REJECTED  # a refusal is a recorded fact

        out = await stub.Submit(S.SubmitRequest(intent=intent(
            "daily-out", strategy_slug="daily", role=EXIT, side=SELL, quantity="5000")))
        assert out.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)
        await wait_for_state(stub, "daily-out", {S.ORDER_STATE_FILLED})
