"""The order plane as a process, with real control and market_data processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import asyncpg
import grpc
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2
from tests.support.postgres import PROJECT_ROOT
from tests.integration.order.conftest import (OrderPlane, far_limit, intent, order_stub, set_global, venue_orders,
                                              wait_for_state)

S = order_pb2


@pytest.fixture(scope="module")
def order_plane(order_env):
    plane = OrderPlane({**order_env, "QUANTMESH_RISK_MAX_ORDER_QUANTITY": "1000000"}).start()
    yield plane
    plane.stop()


async def test_a_market_order_fills_from_the_live_quote_stream_and_the_fill_is_streamed(stub):
    reply = await stub.Submit(S.SubmitRequest(intent=intent("live-1")))
    assert reply.order.order_id.startswith("ord-") and not reply.duplicate
    done = await wait_for_state(stub, "live-1", {S.ORDER_STATE_FILLED})
    assert done.order.state == S.ORDER_STATE_FILLED and done.order.filled_quantity == "1000"
    (fill,) = done.fills
    assert float(fill.price) > 80 and fill.order_id == reply.order.order_id
    stream = stub.WatchFills(S.WatchFillsRequest(resume_after_seq=0))
    first = await asyncio.wait_for(stream.read(), 10)
    stream.cancel()
    assert (first.seq, first.fill.client_order_id) == (1, "live-1")


async def test_fifty_concurrent_duplicate_submits_make_one_venue_order(stub, database_url):
    replies = await asyncio.gather(*(stub.Submit(S.SubmitRequest(intent=far_limit("dup-50"))) for _ in range(50)))
    assert len({r.order.order_id for r in replies}) == 1
    assert sum(not r.duplicate for r in replies) == 1
    assert await venue_orders(database_url, "dup-50") == 1


@pytest.mark.parametrize("overrides, words", [
    (dict(client_order_id=""), "client_order_id is empty"),
    (dict(client_order_id="a b"), "outside [A-Za-z0-9._:-]"),
    (dict(strategy_slug=""), "strategy_slug is empty"),
    (dict(role=common_pb2.STRATEGY_ROLE_UNSPECIFIED), "role"),
    (dict(side=common_pb2.SIDE_UNSPECIFIED), "side"),
    (dict(order_type=S.ORDER_TYPE_UNSPECIFIED), "order_type"),
    (dict(instrument="XAU_USD"), "'XAU_USD' is not traded here"),
    (dict(quantity="NaN"), "NaN"),
    (dict(quantity="-1"), "greater than zero"),
    (dict(quantity="Infinity"), "Infinity"),
    (dict(order_type=S.ORDER_TYPE_LIMIT), "needs limit_price"),
    (dict(limit_price="80"), "must not carry"),
    (dict(order_type=S.ORDER_TYPE_STOP), "needs stop_price"),
])
async def test_bad_intents_get_invalid_argument(stub, overrides, words):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Submit(S.SubmitRequest(intent=intent("bad-1", **overrides)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in error.value.details()


async def test_cancel_rests_and_refuses_a_filled_order(stub):
    await stub.Submit(S.SubmitRequest(intent=far_limit("rest-1")))
    canceled = await stub.Cancel(S.CancelRequest(client_order_id="rest-1", reason="test"))
    assert canceled.order.state == S.ORDER_STATE_CANCELED
    await stub.Submit(S.SubmitRequest(intent=intent("fill-then-cancel")))
    await wait_for_state(stub, "fill-then-cancel", {S.ORDER_STATE_FILLED})
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Cancel(S.CancelRequest(client_order_id="fill-then-cancel"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is FILLED; only open orders can be canceled" in error.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.GetOrder(S.GetOrderRequest(order_id="ord-999999999999"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_max_order_quantity_refuses_with_the_numbers_and_records_the_order(stub):
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Submit(S.SubmitRequest(intent=intent("big-1", quantity="5000000")))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "risk.max_order_quantity" in error.value.details()
    assert "quantity 5000000 exceeds max_order_quantity 1000000" in error.value.details()
    recorded = (await stub.GetOrder(S.GetOrderRequest(client_order_id="big-1"))).order
    assert (recorded.state, recorded.reject_rule) == (S.ORDER_STATE_REJECTED, "risk.max_order_quantity")
    assert recorded.order_id in error.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as again:  # a retry answers the same way
        await stub.Submit(S.SubmitRequest(intent=intent("big-1", quantity="5000000")))
    assert again.value.details() == error.value.details()


async def _refused_within(stub, prefix: str, make, seconds: float = 10.0) -> grpc.aio.AioRpcError:
    """Submits until the plane refuses (the flag reaches it through WatchFlags)."""
    for n in range(int(seconds / 0.1)):
        try:
            await stub.Submit(S.SubmitRequest(intent=make(f"{prefix}-{n}")))
        except grpc.aio.AioRpcError as exc:
            return exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"no refusal within {seconds} s")


async def test_a_lock_set_mid_stream_rejects_the_next_submit_as_halted(stub, control):
    await stub.Submit(S.SubmitRequest(intent=far_limit("before-lock")))
    await set_global(control, global_lock=True, cancel_open_orders=False)  # a lock that leaves orders working
    try:
        error = await _refused_within(stub, "locked", far_limit)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "guard.halted" in error.details()
        cid = error.details().split("(")[1].split(")")[0]
        recorded = (await stub.GetOrder(S.GetOrderRequest(client_order_id=cid))).order
        assert (recorded.state, recorded.reject_rule) == (S.ORDER_STATE_REJECTED, "guard.halted")
        canceled = await stub.Cancel(S.CancelRequest(client_order_id="before-lock"))  # cancels still pass
        assert canceled.order.state == S.ORDER_STATE_CANCELED
    finally:
        await set_global(control, global_lock=False, cancel_open_orders=True)


async def test_the_kill_switch_answers_once_enforced_and_cancels_every_open_order(stub, control, database_url):
    resting = [(await stub.Submit(S.SubmitRequest(intent=far_limit(f"ks-{n}", strategy_slug="kill")))).order
               for n in range(5)]
    assert {o.state for o in resting} == {S.ORDER_STATE_NEW}
    async with grpc.aio.insecure_channel(control) as channel:
        reply = await control_pb2_grpc.ControlStub(channel).SetGlobalFlags(
            control_pb2.SetGlobalFlagsRequest(global_lock=True, reason="kill switch test"))
    try:
        # Acknowledged means enforced: the order plane names itself, and nothing waits on it.
        assert [g.split("@")[0] for g in reply.enforced_by] == ["order"] and not reply.not_enforced_by
        assert reply.snapshot.lock_cancels_open_orders
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # no retry needed: the answer came after enforcement
            await stub.Submit(S.SubmitRequest(intent=far_limit("ks-after", strategy_slug="kill")))
        assert "guard.halted" in refused.value.details()
        for order in resting:
            done = await wait_for_state(stub, order.intent.client_order_id, {S.ORDER_STATE_CANCELED})
            assert done.order.state == S.ORDER_STATE_CANCELED and "global lock" in done.order.reason
        conn = await asyncpg.connect(database_url)
        try:
            states = await conn.fetch("SELECT state FROM paper_venue.orders WHERE client_order_id LIKE 'ks-%'")
        finally:
            await conn.close()
        assert sorted(r[0] for r in states) == ["canceled"] * 5  # canceled at the venue, not only in our book
    finally:
        await set_global(control, global_lock=False)


async def test_flatten_closes_each_position_with_a_reduce_only_order_even_under_a_lock(stub, control):
    for cid, slug, side in (("fl-long", "flat_a", common_pb2.SIDE_BUY), ("fl-short", "flat_b", common_pb2.SIDE_SELL)):
        await stub.Submit(S.SubmitRequest(intent=intent(cid, strategy_slug=slug, side=side, quantity="2000")))
        await wait_for_state(stub, cid, {S.ORDER_STATE_FILLED})
    await stub.Submit(S.SubmitRequest(intent=far_limit("fl-rest", strategy_slug="flat_a")))
    await set_global(control, global_lock=True, cancel_open_orders=False)
    try:
        for slug, side in (("flat_a", common_pb2.SIDE_SELL), ("flat_b", common_pb2.SIDE_BUY)):
            reply = await stub.Flatten(S.FlattenRequest(strategy_slug=slug, reason="test flatten"))
            assert not reply.failures
            (order,) = reply.orders
            intent_ = order.intent
            assert (intent_.strategy_slug, intent_.side, intent_.quantity, intent_.reduce_only, intent_.role) == (
                slug, side, "2000", True, common_pb2.STRATEGY_ROLE_EXIT)
            assert intent_.client_order_id.startswith("flatten-") and "test flatten" in intent_.note
            await wait_for_state(stub, intent_.client_order_id, {S.ORDER_STATE_FILLED})
        assert [o.intent.client_order_id for o in (await stub.Flatten(S.FlattenRequest(
            strategy_slug="flat_a", reason="again"))).orders] == []  # nothing left to close
        rest = await stub.GetOrder(S.GetOrderRequest(client_order_id="fl-rest"))
        assert rest.order.state == S.ORDER_STATE_CANCELED  # its open order went first
        with pytest.raises(grpc.aio.AioRpcError) as no_reason:
            await stub.Flatten(S.FlattenRequest(strategy_slug="flat_a"))
        assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await set_global(control, global_lock=False)


async def test_reducing_lets_an_exit_through_and_rejects_an_entry(stub, control):
    await stub.Submit(S.SubmitRequest(intent=intent("red-open", strategy_slug="reducer", quantity="3000")))
    await wait_for_state(stub, "red-open", {S.ORDER_STATE_FILLED})
    await set_global(control, global_entry_enabled=False)
    try:
        error = await _refused_within(stub, "red-entry", lambda cid: far_limit(cid, strategy_slug="reducer"))
        assert "guard.reducing" in error.details()
        exit_ = await stub.Submit(S.SubmitRequest(intent=intent(
            "red-exit", strategy_slug="reducer", role=common_pb2.STRATEGY_ROLE_EXIT, side=common_pb2.SIDE_SELL,
            quantity="1000")))
        assert exit_.order.state in (S.ORDER_STATE_NEW, S.ORDER_STATE_FILLED)
    finally:
        await set_global(control, global_entry_enabled=True)


async def test_list_orders_pages_newest_first(stub):
    first = await stub.ListOrders(S.ListOrdersRequest(limit=2))
    assert len(first.orders) == 2 and first.next_page_token
    second = await stub.ListOrders(S.ListOrdersRequest(limit=2, page_token=first.next_page_token))
    numbers = [o.order_id for o in (*first.orders, *second.orders)]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == 4
    rejected = await stub.ListOrders(S.ListOrdersRequest(states=[S.ORDER_STATE_REJECTED]))
    assert rejected.orders and all(o.state == S.ORDER_STATE_REJECTED for o in rejected.orders)
    positions = await stub.GetBrokerPositions(S.GetBrokerPositionsRequest())
    assert positions.broker == "paper" and positions.positions[0].instrument == "USD_JPY"


async def test_order_events_join_the_trace_of_the_decision(stub):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    decision = common_pb2.TraceContext(traceparent=f"00-{trace_id}-00f067aa0ba902b7-01")
    await stub.Submit(S.SubmitRequest(intent=far_limit("traced-1", strategy_slug="traced", trace_context=decision)))
    stream = stub.WatchOrders(S.WatchOrdersRequest(strategy_slugs=["traced"], resume_after_seq=0))
    events = [await asyncio.wait_for(stream.read(), 10) for _ in range(3)]
    stream.cancel()
    assert [e.order.state for e in events] == [S.ORDER_STATE_PENDING_SUBMIT, S.ORDER_STATE_SUBMITTED,
                                               S.ORDER_STATE_NEW]
    assert all(e.trace_context.traceparent.split("-")[1] == trace_id for e in events)
    assert events[0].seq < events[1].seq < events[2].seq
    assert events[0].order.intent.trace_context.traceparent == decision.traceparent


async def test_submit_batch_answers_each_intent_in_its_own_slot(stub, database_url):
    first = await stub.Submit(S.SubmitRequest(intent=far_limit("batch-seen")))
    reply = await stub.SubmitBatch(S.SubmitBatchRequest(intents=[
        far_limit("batch-1"),
        intent("batch-bad", quantity="-5"),
        far_limit("batch-seen"),
        intent("batch-big", quantity="5000000"),  # above max_order_quantity: refused and recorded
        far_limit("batch-2"),
    ]))
    ok, bad, seen, big, ok2 = reply.results
    assert (ok.status, ok.order.state, ok.duplicate) == ("OK", S.ORDER_STATE_NEW, False)
    assert bad.status == "INVALID_ARGUMENT" and "quantity" in bad.message and not bad.HasField("order")
    assert (seen.status, seen.duplicate, seen.order.order_id) == ("OK", True, first.order.order_id)
    assert big.status == "FAILED_PRECONDITION" and "risk.max_order_quantity" in big.message
    assert big.order.state == S.ORDER_STATE_REJECTED
    assert ok2.order.state == S.ORDER_STATE_NEW and ok2.order.order_id != ok.order.order_id
    again = await stub.SubmitBatch(S.SubmitBatchRequest(intents=[far_limit("batch-1"), far_limit("batch-2")]))
    assert [r.order.order_id for r in again.results] == [ok.order.order_id, ok2.order.order_id]
    assert all(r.duplicate for r in again.results)
    assert [await venue_orders(database_url, cid) for cid in ("batch-1", "batch-2", "batch-seen", "batch-big")] == [
        1, 1, 1, 0]
    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.SubmitBatch(S.SubmitBatchRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "1 to 1,000" in empty.value.details()


async def test_the_cli_cancels_one_strategys_open_orders_and_says_what_it_did(stub, order_plane):
    for n in range(2):
        await stub.Submit(S.SubmitRequest(intent=far_limit(f"cli-co-{n}", strategy_slug="cli_co")))
    await stub.Submit(S.SubmitRequest(intent=far_limit("cli-other", strategy_slug="cli_other")))
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli", "cancel-open", "--strategy", "cli_co", "--reason", "cli test",
        "--address", order_plane.address], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert "canceled:" in done.stdout and "cli-co-0" in done.stdout and "cli-co-1" in done.stdout
    assert "cli-other" not in done.stdout
    other = await stub.GetOrder(S.GetOrderRequest(client_order_id="cli-other"))
    assert other.order.state == S.ORDER_STATE_NEW
    refused = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli", "flatten", "--strategy", "Not A Slug", "--reason", "x",
        "--address", order_plane.address], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr and "strategy_slug" in refused.stderr


async def test_the_audit_trail_holds_a_drill_with_every_field_filled(stub, control, order_plane):
    await stub.Submit(S.SubmitRequest(intent=intent("drill-open", strategy_slug="drill")))
    await wait_for_state(stub, "drill-open", {S.ORDER_STATE_FILLED})
    await set_global(control, global_lock=True)
    refused = await _refused_within(stub, "drill-refused", lambda cid: far_limit(cid, strategy_slug="drill"))
    await stub.Flatten(S.FlattenRequest(strategy_slug="drill", reason="drill: flat"))
    await set_global(control, global_lock=False)
    async with grpc.aio.insecure_channel(control) as channel:
        audit = control_pb2_grpc.ControlStub(channel)
        entries = []
        for _ in range(300):  # the order plane's records reach control through its outbox
            entries = (await audit.ListAudit(control_pb2.ListAuditRequest(limit=1000))).entries
            # This drill's own entries: other tests of the module leave refusals and flattens too.
            events = {(e.plane, e.event) for e in entries if e.slug == "drill" or e.flag == "global_lock"}
            if {("control", "flag_change"), ("order", "order_refused"), ("order", "flatten")} <= events:
                break
            await asyncio.sleep(0.1)
        refusal = next(e for e in entries if e.event == "order_refused" and e.slug == "drill")
        flatten = next(e for e in entries if e.event == "flatten" and e.slug == "drill")
        lock = next(e for e in entries if e.flag == "global_lock" and e.new_value == "true")
        for entry in (refusal, flatten, lock):
            assert all((entry.event, entry.plane, entry.mode, entry.site, entry.session, entry.actor, entry.role,
                        entry.reason, entry.subject)), entry
            assert entry.time.seconds > 0
        assert refusal.reason.startswith("guard.halted") and refusal.subject in refused.details()
        assert flatten.reason == "drill: flat" and flatten.subject.startswith("ord-")
        only_order = (await audit.ListAudit(control_pb2.ListAuditRequest(plane="order"))).entries
        assert only_order and {e.plane for e in only_order} == {"order"}
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "services.cli", "audit", "--plane", "order", "--event", "flatten",
        "--address", control], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert done.returncode == 0 and "flatten" in done.stdout and "drill: flat" in done.stdout, done.stderr
