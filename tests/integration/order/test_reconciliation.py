"""Reconciliation at start: a difference between the ledger and the venue stops entries until decided.

The venue's own book (the paper venue's schema) is given a position the order plane never
traded, as a venue would show after a manual trade or a lost fill. The position plane's
reconciliation, at its start, confirms the difference, holds it for an operator: entries
are refused with risk.reconciliation naming it, exits pass. The operator adopts the venue's
figure with Position.Reconcile(apply_adjustments); entries pass again, and the decisions are
in the audit trail.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.db import create_database
from tests.integration.order.conftest import LOG_DIR, OrderPlane, far_limit, intent, order_stub, wait_for_state
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess

S = order_pb2


async def inject_venue_position(database_url: str, cid: str, quantity: int) -> None:
    """A filled buy at the venue that the order plane never sent."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO paper_venue.orders (number, client_order_id, account, instrument, side, quantity, order_type,"
            " time_in_force, state, filled_quantity) VALUES (900000, $1, 'paper', 'USD_JPY', 'buy', $2, 'market',"
            " 'IOC', 'filled', $2)", cid, quantity)
        await conn.execute("INSERT INTO paper_venue.fills (broker_fill_id, client_order_id, quantity, price, commission,"
                           " time) VALUES ($1, $2, $3, 86.5, 0, now())", f"{cid}-1", cid, quantity)
    finally:
        await conn.close()


async def test_a_difference_found_at_start_blocks_entries_until_an_operator_adopts_it(order_env, postgres_admin_url):
    database_url = await create_database(postgres_admin_url)
    position_addr = f"127.0.0.1:{free_port()}"
    order = OrderPlane({**order_env, "DATABASE_URL": database_url, "QUANTMESH_POSITIONS_SOURCE": "position_plane",
                        "QUANTMESH_POSITION_ADDR": position_addr}).start()
    position_env = {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": position_addr, "QUANTMESH_ORDER_ADDR": order.address,
        "QUANTMESH_MARKET_DATA_ADDR": order_env["QUANTMESH_MARKET_DATA_ADDR"],
        "QUANTMESH_CONTROL_ADDR": order_env["QUANTMESH_CONTROL_ADDR"],
        "QUANTMESH_RECONCILE_SECONDS": "1", "QUANTMESH_RECONCILE_CONFIRM_SECONDS": "0.2"}
    position = PlaneProcess("services.position", position_env, LOG_DIR).start()
    try:
        position.wait_healthy(position_addr)
        async with grpc.aio.insecure_channel(order.address) as channel, \
                grpc.aio.insecure_channel(position_addr) as ledger_channel:
            stub, ledger = order_stub(channel), position_pb2_grpc.PositionStub(ledger_channel)
            opened = await entry_passing(stub, lambda n: intent(f"rec-open-{n}", strategy_slug="rec"))
            await wait_for_state(stub, opened.order.intent.client_order_id, {S.ORDER_STATE_FILLED})

            position.terminate()  # the venue gets a position nobody traded while the ledger is down
            await inject_venue_position(database_url, "manual-at-venue", 3000)
            position = PlaneProcess("services.position", position_env, LOG_DIR).start()
            position.wait_healthy(position_addr)

            refusal = await first_refusal(stub, "rec-entry")
            assert "risk.reconciliation" in refusal and "USD_JPY on paper" in refusal
            assert "the ledger holds 1000, the venue 4000 (difference 3000)" in refusal
            exit_ = await stub.Submit(S.SubmitRequest(intent=intent(
                "rec-exit", strategy_slug="rec", role=common_pb2.STRATEGY_ROLE_EXIT, side=common_pb2.SIDE_SELL,
                quantity="400")))
            assert exit_.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)  # exits are never held
            await wait_for_state(stub, "rec-exit", {S.ORDER_STATE_FILLED})
            decided = await ledger.Reconcile(position_pb2.ReconcileRequest(
                apply_adjustments=True, reason="manual trade at the venue, confirmed with the desk"))
            assert [(d.instrument, d.difference) for d in decided.differences] == [("USD_JPY", "3000")]
            assert len(decided.adjustments) == 1
            back = await entry_passing(stub, lambda n: far_limit(f"rec-back-{n}", strategy_slug="rec"))
            assert back.order.state == S.ORDER_STATE_NEW
        async with grpc.aio.insecure_channel(order_env["QUANTMESH_CONTROL_ADDR"]) as channel:
            audit = control_pb2_grpc.ControlStub(channel)
            for _ in range(100):
                entries = (await audit.ListAudit(control_pb2.ListAuditRequest(event="reconciliation"))).entries
                if {e.actor for e in entries} >= {"reconciler", "anonymous"}:
                    break
                await asyncio.sleep(0.1)
            held = next(e for e in entries if e.actor == "reconciler")
            adopted = next(e for e in entries if e.actor == "anonymous")
            assert held.plane == "position" and "held for an operator" in held.reason and held.new_value == "4000"
            assert "manual trade at the venue" in adopted.reason and adopted.subject == "USD_JPY"
    finally:
        position.terminate()
        order.stop()


async def entry_passing(stub, make, timeout: float = 30.0) -> S.SubmitResponse:
    """Submits new ids until one passes pre-trade (the view arrives, or the hold is lifted)."""
    deadline = time.monotonic() + timeout
    for n in range(10_000):
        try:
            return await stub.Submit(S.SubmitRequest(intent=make(n)))
        except grpc.aio.AioRpcError as exc:
            details = exc.details() or ""
            if not ("risk.reconciliation" in details or "risk.exposure_stale" in details) \
                    or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def first_refusal(stub, prefix: str, timeout: float = 30.0) -> str:
    """Entries until one is refused by reconciliation (it runs as the position plane starts)."""
    deadline = time.monotonic() + timeout
    for n in range(10_000):
        try:
            await stub.Submit(S.SubmitRequest(intent=far_limit(f"{prefix}-{n}", strategy_slug="rec")))
        except grpc.aio.AioRpcError as exc:
            if "risk.reconciliation" in (exc.details() or ""):
                return exc.details()
            assert "risk.exposure_stale" in exc.details(), exc.details()  # the view is not there yet
        if time.monotonic() > deadline:
            raise AssertionError("reconciliation never held the difference")
        await asyncio.sleep(0.2)
    raise AssertionError("unreachable")
