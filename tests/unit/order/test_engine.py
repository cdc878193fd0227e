"""The order engine with in-memory ports: the whole flow, refusals, idempotency, recovery."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from services.common.errors import FailedPrecondition
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.order.states import OrderState as S
from services.order.faults import CrashAfterSubmit
from services.order.records import OrderRecord, TraceRef
from tests.unit.order.conftest import START, intent, settle


async def test_a_market_order_goes_new_then_filled_and_its_fill_is_streamed(make_rig):
    rig = await make_rig()
    await rig.quote("86.655", "86.728")
    order, duplicate = await rig.engine.submit(intent())
    assert (order.state, duplicate, order.broker, order.broker_order_id) == (S.NEW, False, "paper", "paper-1")
    await rig.quote("86.657", "86.730")
    order = await rig.engine.get(client_order_id="c-1")
    assert (order.state, order.filled_quantity, order.average_fill_price) == (S.FILLED, 1000, Decimal("86.730"))
    (fill,) = await rig.engine.fills_of(order)
    assert (fill.order_id, fill.price, fill.seq) == (order.order_id, Decimal("86.730"), 1)
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 1000
    states = [e.order.state async for _, e in _take(rig.engine.order_events.subscribe(after_seq=0), 4)]
    assert states == [S.PENDING_SUBMIT, S.SUBMITTED, S.NEW, S.FILLED]


async def _take(stream, n):
    count = 0
    async for item in stream:
        yield item
        count += 1
        if count == n:
            return


async def test_fifty_concurrent_duplicates_make_one_broker_order_and_one_order_id(make_rig):
    rig = await make_rig()
    results = await asyncio.gather(*(rig.engine.submit(intent("dup-1")) for _ in range(50)))
    assert len({order.order_id for order, _ in results}) == 1
    assert sorted(d for _, d in results) == [False] + [True] * 49
    assert len(await rig.venue.all_orders()) == 1


async def test_halted_refuses_and_records_a_rejected_order_and_a_retry_gets_the_same_answer(make_rig):
    rig = await make_rig()
    rig.flags.state = "halted"
    order, duplicate = await rig.engine.submit(intent("h-1"))
    assert (order.state, order.reject_rule, duplicate) == (S.REJECTED, "guard.halted", False)
    again, duplicate = await rig.engine.submit(intent("h-1"))
    assert (again.order_id, again.state, duplicate) == (order.order_id, S.REJECTED, True)
    assert await rig.venue.all_orders() == []


async def test_reducing_lets_an_exit_through_and_refuses_an_entry(make_rig):
    rig = await make_rig()
    await rig.engine.submit(intent("open"))
    await rig.quote("86.0", "86.1")
    rig.flags.state = "reducing"
    entry, _ = await rig.engine.submit(intent("more"))
    assert (entry.state, entry.reject_rule) == (S.REJECTED, "guard.reducing")
    exit_, _ = await rig.engine.submit(intent("close", role="exit", side="sell", quantity=Decimal(600)))
    assert exit_.state == S.NEW
    assert rig.flags.calls[-2:] == [("ma_cross", "entry", False), ("ma_cross", "exit", True)]
    flip, _ = await rig.engine.submit(intent("flip", role="exit", side="sell", quantity=Decimal(5000)))
    assert flip.reject_rule == "guard.reducing"  # selling more than the position opens a short


@pytest.mark.parametrize("setup, order_fields, rule, words", [
    (lambda r: None, dict(quantity=Decimal(5_000_000)), "risk.max_order_quantity",
     "quantity 5000000 exceeds max_order_quantity 1000000"),
    (lambda r: setattr(r.positions, "strategy", Decimal(1_999_500)), {}, "risk.max_position_per_strategy",
     "from 1999500 to 2000500"),
    (lambda r: setattr(r.positions, "instrument", Decimal(4_999_500)), {}, "risk.max_position_per_instrument",
     "from 4999500 to 5000500"),
    (lambda r: setattr(r.positions, "drawdown", Decimal("0.3")), {}, "risk.max_drawdown", "drawdown 0.3"),
    (lambda r: setattr(r.positions, "losses", 5), {}, "risk.max_consecutive_losses", "5 consecutive losses"),
    (lambda r: setattr(r.positions, "down", True), {}, "risk.exposure_stale", "has been silent for 9.0 s"),
    (lambda r: None, dict(reduce_only=True, role="exit"), "risk.reduce_only", "would not reduce"),
])
async def test_each_risk_rule_refuses_with_its_numbers(make_rig, setup, order_fields, rule, words):
    rig = await make_rig()
    setup(rig)
    order, _ = await rig.engine.submit(intent("r-1", **order_fields))
    assert (order.state, order.reject_rule) == (S.REJECTED, rule)
    assert words in order.reason


async def test_the_order_rate_refuses_the_order_past_the_budget(make_rig):
    rig = await make_rig(limits=RiskLimits(max_orders_per_second=Decimal(2)))
    states = [(await rig.engine.submit(intent(f"rate-{n}", order_type="limit", limit_price=Decimal(1),
                                              time_in_force="GTC")))[0] for n in range(3)]
    assert [o.state for o in states] == [S.NEW, S.NEW, S.REJECTED]
    assert states[2].reject_rule == "risk.order_rate"


async def test_without_the_position_plane_a_reducing_exit_still_passes_on_the_own_book(make_rig):
    rig = await make_rig()
    await rig.engine.submit(intent("open"))
    await rig.quote("86.0", "86.1")
    rig.positions.down = True
    rig.positions.drawdown = Decimal("0.9")  # would block an entry, but the plane is down anyway
    exit_, _ = await rig.engine.submit(intent("out", role="exit", side="sell"))
    entry, _ = await rig.engine.submit(intent("in"))
    assert exit_.state == S.NEW and entry.reject_rule == "risk.exposure_stale"
    assert "orders that reduce the strategy's position still pass" in entry.reason


async def test_an_exit_never_asks_the_position_plane_to_catch_up_and_an_entry_does(make_rig):
    """An order that reduces is judged on sizes alone, so it must not wait for the position plane to
    apply this plane's latest fill; an entry must, for the PnL rules (consecutive losses, drawdown)."""
    rig = await make_rig()
    await rig.engine.submit(intent("open"))
    await rig.quote("86.0", "86.1")
    recorded = rig.engine.journal.last_fill_seq
    assert recorded > 0
    rig.positions.asked_with.clear()
    await rig.engine.submit(intent("out", role="exit", side="sell"))
    await rig.engine.submit(intent("again"))
    assert rig.positions.asked_with == [None, recorded]


async def test_cancel_an_open_order_and_refuse_cancel_of_a_filled_one(make_rig):
    rig = await make_rig()
    rest, _ = await rig.engine.submit(intent("rest", order_type="limit", limit_price=Decimal(80),
                                             time_in_force="GTC"))
    canceled = await rig.engine.cancel(order_id=rest.order_id, reason="changed my mind")
    assert (canceled.state, canceled.reason) == (S.CANCELED, "changed my mind")
    await rig.engine.submit(intent("fills"))
    await rig.quote("86.0", "86.1")
    with pytest.raises(FailedPrecondition, match="is FILLED; only open orders can be canceled"):
        await rig.engine.cancel(client_order_id="fills")
    with pytest.raises(FailedPrecondition, match="is CANCELED"):
        await rig.engine.cancel(client_order_id="rest")


async def test_partial_fills_then_ioc_expiry(make_rig):
    rig = await make_rig(settings=PaperSettings(liquidity=Decimal(300)))
    await rig.engine.submit(intent("part"))
    await rig.quote("86.0", "86.1")
    order = await rig.engine.get(client_order_id="part")
    assert (order.state, order.filled_quantity) == (S.EXPIRED, 300)


class Crash(BaseException):
    pass


def _crash():
    raise Crash()


async def test_recovery_after_a_crash_between_the_broker_ack_and_storing_it(make_rig):
    crashed = await make_rig(wrap_broker=lambda paper: CrashAfterSubmit(paper, crash=_crash))
    with pytest.raises(Crash):
        await crashed.engine.submit(intent("crash-1"))
    assert (await crashed.store.by_client_id("crash-1")).state == S.SUBMITTED
    await crashed.quote("86.0", "86.1")  # the venue fills it while we are down
    await crashed.engine.stop()
    restarted = await make_rig(store=crashed.store, venue=crashed.venue)
    order = await restarted.engine.get(client_order_id="crash-1")
    assert (order.state, order.filled_quantity) == (S.FILLED, 1000)
    assert len(await restarted.venue.all_orders()) == 1
    assert restarted.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 1000


async def store_only(rig, the_intent, *states):
    """Stores an order as if the plane died right after writing it (never sent)."""
    now = rig.clock.now()
    draft = OrderRecord(number=0, intent=the_intent, state=S.PENDING_SUBMIT, created_time=now, updated_time=now)
    return await rig.engine.journal.new_order([draft.with_changes(state=s) for s in states], TraceRef())


async def test_recovery_sends_a_never_sent_order_and_rejects_one_lost_in_transit_after_the_window(make_rig):
    rig = await make_rig()
    pending = await store_only(rig, intent("never-sent"), S.PENDING_SUBMIT)
    await store_only(rig, intent("lost"), S.PENDING_SUBMIT, S.SUBMITTED)
    await rig.engine.stop()
    restarted = await make_rig(store=rig.store, venue=rig.venue)
    sent = await restarted.engine.get(order_id=pending.order_id)
    assert sent.state == S.NEW and [o.order.client_order_id for o in await rig.venue.all_orders()] == ["never-sent"]
    # SUBMITTED may have left: it is looked up again, never sent again, until the in-transit window passes.
    assert (await restarted.engine.get(client_order_id="lost")).state == S.SUBMITTED
    assert restarted.engine.venue.unresolved == 1
    restarted.clock.advance(60)
    await settle()
    assert (await restarted.engine.get(client_order_id="lost")).state == S.SUBMITTED
    restarted.clock.advance(90)
    await settle()
    gone = await restarted.engine.get(client_order_id="lost")
    assert (gone.state, gone.reject_rule) == (S.REJECTED, "broker.lost_in_transit")
    assert "no order with this client id for 150 s since it was sent" in gone.reason
    assert [o.order.client_order_id for o in await rig.venue.all_orders()] == ["never-sent"]


async def test_watch_fills_resumes_from_the_store_after_a_restart(make_rig):
    rig = await make_rig()
    for n in range(3):
        await rig.engine.submit(intent(f"f-{n}"))
    await rig.quote("86.0", "86.1")
    await rig.engine.stop()
    restarted = await make_rig(store=rig.store, venue=rig.venue)
    assert restarted.engine.fill_events.last_seq == 3
    got = [(seq, e.fill.client_order_id) async for seq, e in _take(
        restarted.engine.fill_events.subscribe(after_seq=1), 2)]
    assert got == [(2, "f-1"), (3, "f-2")]


async def test_the_decision_time_reaches_the_venue_and_the_decisions_own_quote_does_not_fill(make_rig):
    decided = START + timedelta(seconds=2)
    rig = await make_rig()
    await rig.quote("86.60", "86.70", seconds=1)  # START + 1 s: the venue has not seen the decision's quote
    order, _ = await rig.engine.submit(intent("dt-1", decision_time=decided))
    assert order.state == S.NEW and order.intent.decision_time == decided
    (venue_order,) = await rig.venue.all_orders()
    assert venue_order.order.decision_time == decided
    await rig.quote("86.61", "86.71", seconds=1)  # START + 2 s: the decision's own quote
    assert (await rig.engine.get(client_order_id="dt-1")).state == S.NEW
    await rig.quote("86.62", "86.72", seconds=1)
    order = await rig.engine.get(client_order_id="dt-1")
    assert (order.state, order.average_fill_price, order.intent.decision_time) == (S.FILLED, Decimal("86.72"), decided)


async def test_a_pending_order_sent_at_recovery_still_carries_its_decision_time(make_rig):
    decided = START + timedelta(minutes=5)
    rig = await make_rig()
    await store_only(rig, intent("dt-pending", decision_time=decided), S.PENDING_SUBMIT)
    await rig.engine.stop()
    restarted = await make_rig(store=rig.store, venue=rig.venue)
    assert (await restarted.engine.get(client_order_id="dt-pending")).state == S.NEW
    (venue_order,) = await rig.venue.all_orders()
    assert venue_order.order.decision_time == decided
    assert venue_order.reference_time == decided + timedelta(microseconds=1)


class SilentVenue:
    """The paper venue, except that it never reports executions: as if every one were lost on the way."""

    def __init__(self, paper) -> None:
        self._paper = paper
        self.name = paper.name

    async def submit(self, order):
        return await self._paper.submit(order)

    async def cancel(self, client_order_id):
        return await self._paper.cancel(client_order_id)

    async def lookup(self, client_order_id):
        return await self._paper.lookup(client_order_id)

    async def positions(self, account):
        return await self._paper.positions(account)

    async def executions(self):
        while True:
            await asyncio.sleep(3600)
            yield None


async def test_order_reconciliation_books_a_fill_whose_execution_never_arrived(make_rig):
    rig = await make_rig(wrap_broker=SilentVenue)
    resting, _ = await rig.engine.submit(intent("rec-1", order_type="limit", limit_price=Decimal("86.10"),
                                                time_in_force="GTC"))
    await rig.quote("86.00", "86.05")  # crosses: the venue fills it, the execution is lost
    assert (await rig.engine.get(client_order_id="rec-1")).state == S.NEW
    changed = await rig.engine.venue.reconcile_orders()
    assert changed == [(resting.order_id, "NEW", "FILLED")]
    order = await rig.engine.get(client_order_id="rec-1")
    assert (order.state, order.filled_quantity) == (S.FILLED, 1000)
    assert await rig.engine.venue.reconcile_orders() == []  # nothing more to learn


def declaring(**traits):
    """A broker wrapper for make_rig: the paper venue declaring other venue traits."""
    def wrap(broker):
        for name, value in traits.items():
            setattr(broker, name, value)
        return broker
    return wrap


async def working_protection(rig, cid_prefix: str = ""):
    orders = [o for o in rig.engine.journal.working_orders() if o.intent.client_order_id.endswith((":sl", ":tp", ":ts"))]
    return sorted(orders, key=lambda o: o.intent.order_type)


async def test_an_entry_with_protection_gets_a_stop_and_a_limit_resting_at_the_venue(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("prot-1", stop_loss_distance=Decimal("0.30"), take_profit_distance=Decimal("0.50")))
    await rig.quote("86.00", "86.10")  # the entry fills at the ask, 86.10
    limit, stop = await working_protection(rig)
    assert (stop.intent.order_type, stop.intent.side, stop.intent.stop_price, stop.intent.quantity) == (
        "stop", "sell", Decimal("85.80"), 1000)
    assert (limit.intent.order_type, limit.intent.side, limit.intent.limit_price) == ("limit", "sell", Decimal("86.60"))
    assert stop.intent.reduce_only and stop.state == S.NEW and stop.intent.role == "exit"
    venue = {o.order.client_order_id: o for o in await rig.venue.all_orders()}
    assert venue[stop.intent.client_order_id].order.oco_group == "protect:paper:ma_cross:USD_JPY"


async def test_the_stop_closes_the_position_and_cancels_the_take_profit_at_the_same_quote(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("prot-2", stop_loss_distance=Decimal("0.30"), take_profit_distance=Decimal("0.50")))
    await rig.quote("86.00", "86.10")
    limit, stop = await working_protection(rig)
    await rig.quote("85.70", "85.75")  # the bid trades through 85.80: the stop fills
    assert (await rig.engine.get(client_order_id=stop.intent.client_order_id)).state == S.FILLED
    assert (await rig.engine.get(client_order_id=limit.intent.client_order_id)).state == S.CANCELED
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 0
    assert await working_protection(rig) == []


async def test_an_exit_and_the_stop_never_both_close_the_position(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("prot-3", stop_loss_distance=Decimal("0.30")))
    await rig.quote("86.00", "86.10")
    (stop,) = await working_protection(rig)
    # The EXIT worker's market exit and the stop are both due at the next quote (it trades through the stop).
    exit_, _ = await rig.engine.submit(intent("exit-3", role="exit", side="sell", reduce_only=True))
    await rig.quote("85.70", "85.75")
    fills = [f for f in rig.store._fills if f.strategy_slug == "ma_cross"]
    assert sum(f.signed_quantity for f in fills) == 0 and len(fills) == 2  # one entry, exactly one close
    states = {(await rig.engine.get(client_order_id=c)).state for c in (stop.intent.client_order_id, "exit-3")}
    assert states == {S.FILLED, S.CANCELED}


async def test_a_partial_exit_leaves_the_rest_protected(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("prot-4", stop_loss_distance=Decimal("0.30")))
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("exit-4", role="exit", side="sell", quantity=Decimal(400), reduce_only=True))
    await rig.quote("86.05", "86.12")  # the exit fills; its group cancels the old stop
    (stop,) = await working_protection(rig)
    assert (stop.intent.quantity, stop.intent.stop_price, stop.state) == (600, Decimal("85.80"), S.NEW)
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 600


async def test_a_trailing_stop_rests_beside_the_stop_and_the_first_to_fill_cancels_the_other(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("trail-1", stop_loss_distance=Decimal("0.30"),
                                   trailing_stop_distance=Decimal("0.20")))
    await rig.quote("86.00", "86.10")  # the entry fills at 86.10: stop 85.80, trailing first trigger 85.90
    stop, trailing = await working_protection(rig)
    assert (trailing.intent.order_type, trailing.intent.side, trailing.intent.stop_price,
            trailing.intent.trail_distance, trailing.intent.quantity, trailing.intent.reduce_only) == (
        "trailing_stop", "sell", Decimal("85.90"), Decimal("0.20"), 1000, True)
    assert trailing.intent.client_order_id.endswith(":ts") and stop.intent.stop_price == Decimal("85.80")
    await rig.quote("86.50", "86.55")  # the bid rises: the trigger follows to 86.30
    await rig.quote("86.31", "86.36")  # above it: nothing
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 1000
    await rig.quote("86.29", "86.34")  # at or below 86.30: the trailing stop sells at the bid
    assert (await rig.engine.get(client_order_id=trailing.intent.client_order_id)).state == S.FILLED
    assert (await rig.engine.get(client_order_id=stop.intent.client_order_id)).state == S.CANCELED
    fills = [f for f in rig.store._fills if f.strategy_slug == "ma_cross"]
    assert [(f.side, f.price) for f in fills] == [("buy", Decimal("86.10")), ("sell", Decimal("86.29"))]
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 0 and await working_protection(rig) == []


async def test_after_a_restart_the_trailing_stop_keeps_its_trigger_and_is_not_placed_twice(make_rig):
    rig = await make_rig()
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("trail-2", trailing_stop_distance=Decimal("0.20")))
    await rig.quote("86.00", "86.10")
    await rig.quote("86.60", "86.65")  # trigger 86.40
    (before,) = await working_protection(rig)
    await rig.engine.stop()
    restarted = await make_rig(store=rig.store, venue=rig.venue)
    await restarted.paper.load()  # as the order plane's start does: the venue's working orders
    restarted.clock.advance(10)
    (after,) = await working_protection(restarted)
    assert after.intent.client_order_id == before.intent.client_order_id
    await restarted.quote("86.45", "86.50")  # above 86.40: still resting (a trigger from 85.90 would not move)
    assert restarted.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 1000
    await restarted.quote("86.40", "86.45")
    assert restarted.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 0
    assert len([o for o in await restarted.venue.all_orders() if o.order.order_type == "trailing_stop"]) == 1


async def test_a_venue_holding_one_resting_close_per_position_gets_the_stop_loss_alone(make_rig):
    rig = await make_rig(wrap_broker=declaring(one_resting_close=True))  # as a ccxt spot exchange declares
    await rig.quote("86.00", "86.10")
    await rig.engine.submit(intent("spot-1", stop_loss_distance=Decimal("0.30"), take_profit_distance=Decimal("0.50"),
                                   trailing_stop_distance=Decimal("0.20")))
    await rig.quote("86.00", "86.10")
    (stop,) = await working_protection(rig)
    assert (stop.intent.order_type, stop.intent.stop_price) == ("stop", Decimal("85.80"))
    assert not [o for o in await rig.venue.all_orders() if o.order.order_type in ("limit", "trailing_stop")]


async def test_an_entry_asking_for_a_trailing_stop_is_not_sent_to_a_venue_that_holds_none(make_rig):
    rig = await make_rig(wrap_broker=declaring(trailing_stops=False))  # as GMO Coin and ccxt declare
    await rig.quote("86.00", "86.10")
    order, _ = await rig.engine.submit(intent("trail-gmo", stop_loss_distance=Decimal("0.30"),
                                              trailing_stop_distance=Decimal("0.20")))
    assert (order.state, order.reject_rule) == (S.REJECTED, "venue.trailing_stop")
    assert "holds no trailing stops" in order.reason and await rig.venue.all_orders() == []
    plain, _ = await rig.engine.submit(intent("plain-gmo", stop_loss_distance=Decimal("0.30")))
    assert plain.state in (S.NEW, S.FILLED)  # without the trailing stop it goes


async def test_protection_is_refused_on_an_exit(make_rig):
    from quantmesh.common.v1 import common_pb2
    from quantmesh.order.v1 import order_pb2
    from services.common.errors import InvalidArgument
    from services.order.intents import validate_intent

    message = order_pb2.OrderIntent(client_order_id="x", strategy_slug="s", role=common_pb2.STRATEGY_ROLE_EXIT,
                                    instrument="USD_JPY", side=common_pb2.SIDE_SELL, quantity="1000",
                                    order_type=order_pb2.ORDER_TYPE_MARKET, stop_loss_distance="0.3")
    with pytest.raises(InvalidArgument, match="protect a new position"):
        validate_intent(message, instruments=("USD_JPY",), default_account="paper")


async def test_no_pyramiding_refuses_an_entry_that_would_add_on_the_planes_own_book(make_rig):
    """The worker decided "not adding" on a view that had not seen the fill yet: the order plane's
    own book has, and refuses; an entry the other way (a turn) and one without the flag still pass."""
    rig = await make_rig()
    await rig.quote("86.0", "86.1")
    first, _ = await rig.engine.submit(intent("e-1", no_pyramiding=True))
    # Not filled yet: a second market buy entry would add to the one still working.
    second, _ = await rig.engine.submit(intent("e-2", no_pyramiding=True))
    assert (second.state, second.reject_rule) == (S.REJECTED, "risk.no_pyramiding")
    assert "entry e-1 in USD_JPY is still working" in second.reason
    await rig.quote("86.0", "86.1")
    assert rig.engine.book.strategy("paper", "ma_cross", "USD_JPY") == 1000
    third, _ = await rig.engine.submit(intent("e-3", no_pyramiding=True))
    assert (third.state, third.reject_rule) == (S.REJECTED, "risk.no_pyramiding")
    assert third.reason.startswith("ma_cross is already long 1000 USD_JPY; this buy entry would add to it")
    turn, _ = await rig.engine.submit(intent("e-4", side="sell", no_pyramiding=True))
    assert turn.state == S.NEW and turn.intent.no_pyramiding
    adds, _ = await rig.engine.submit(intent("e-5"))  # an operator's add, asked for
    assert adds.state == S.NEW


async def test_no_pyramiding_is_refused_on_an_exit():
    from quantmesh.common.v1 import common_pb2
    from quantmesh.order.v1 import order_pb2
    from services.common.errors import InvalidArgument
    from services.order.intents import intent_to_proto, validate_intent

    message = order_pb2.OrderIntent(client_order_id="x", strategy_slug="s", role=common_pb2.STRATEGY_ROLE_EXIT,
                                    instrument="USD_JPY", side=common_pb2.SIDE_SELL, quantity="1000",
                                    order_type=order_pb2.ORDER_TYPE_MARKET, no_pyramiding=True)
    with pytest.raises(InvalidArgument, match="no_pyramiding keeps an entry from adding"):
        validate_intent(message, instruments=("USD_JPY",), default_account="paper")
    message.role = common_pb2.STRATEGY_ROLE_ENTRY
    parsed = validate_intent(message, instruments=("USD_JPY",), default_account="paper")
    assert parsed.no_pyramiding and intent_to_proto(parsed).no_pyramiding
