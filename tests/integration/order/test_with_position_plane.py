"""Risk on the real position plane's ledger (Position.WatchExposure), fed by this plane's WatchFills."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.integration.order.conftest import LOG_DIR, OrderPlane, intent, order_stub, wait_for_state
from services.common.db import create_database
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


async def test_entries_stop_when_the_position_plane_dies_and_resume_when_it_returns(order_env, postgres_admin_url):
    """kill -9 of the position plane: past the staleness bound entries are refused with the rule,
    an exit is still judged and passes; after a restart entries pass again."""
    # A database of its own: the module's order plane holds the writer lease of the module's database.
    database_url = await create_database(postgres_admin_url)
    position_addr = f"127.0.0.1:{free_port()}"
    order = OrderPlane({**order_env, "DATABASE_URL": database_url, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": position_addr,
                        "QUANTMESH_EXPOSURE_STALENESS_SECONDS": "1"}).start()
    position_env = {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr,
                    "QUANTMESH_ORDER_ADDR": order.address,
                    "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"]}
    position = PlaneProcess("services.position", position_env, LOG_DIR).start()
    try:
        position.wait_healthy(position_addr)
        async with grpc.aio.insecure_channel(order.address) as channel:
            stub = order_stub(channel)
            opened = await submit_once_exposure_is_fresh(stub, lambda n: intent(f"dies-open-{n}", strategy_slug="dies"))
            await wait_for_state(stub, opened.order.intent.client_order_id, {S.ORDER_STATE_FILLED})

            position.kill()
            refusal = await refused_entry(stub, "dies-entry")
            assert "risk.exposure_stale" in refusal and "has been silent" in refusal
            assert "orders that reduce the strategy's position still pass" in refusal
            exit_ = await stub.Submit(S.SubmitRequest(intent=intent(
                "dies-exit", strategy_slug="dies", role=common_pb2.STRATEGY_ROLE_EXIT, side=common_pb2.SIDE_SELL,
                quantity="400")))
            assert exit_.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)

            position = PlaneProcess("services.position", position_env, LOG_DIR).start()
            position.wait_healthy(position_addr)
            back = await submit_once_exposure_is_fresh(stub, lambda n: intent(f"dies-back-{n}", strategy_slug="dies"))
            assert back.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)
    finally:
        position.terminate()
        order.stop()


async def refused_entry(stub, prefix: str, timeout: float = 20.0) -> str:
    """Entries until one is refused (the bound passes while we try); its sentence."""
    deadline = time.monotonic() + timeout
    for n in range(10_000):
        try:
            await stub.Submit(S.SubmitRequest(intent=intent(f"{prefix}-{n}", strategy_slug="dies")))
        except grpc.aio.AioRpcError as exc:
            return exc.details() or ""
        if time.monotonic() > deadline:
            raise AssertionError(f"entries still pass {timeout:g} s after the position plane died")
        await asyncio.sleep(0.2)
    raise AssertionError("unreachable")
