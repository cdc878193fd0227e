"""OANDA v20 broker and pricing feed against a loopback OANDA that keeps OANDA's documented rules.

Each bug of issue 17 for OANDA has a test here that fails on the old adapter: a resend after
a timeout and a failed lookup (2 fills), fills read from the deprecated `price`, numbers sent
as `str(Decimal)` (exponents, excess decimals).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from decimal import Decimal

import pytest

from services.common.config import Env
from services.common.venues import OandaSettings
from services.market_data.feeds.oanda import Backoff, OandaFeed
from services.order.brokers.base import (BrokerOrder, BrokerOverloaded, BrokerRejected, OutcomeUnknown,
                                         RetryableBrokerError)
from services.order.brokers.oanda import OandaBroker
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.roads import gateway, rides_out_a_429_storm
from tests.integration.venues.fakes.oanda_server import FILL_PRICE, FakeOanda

TOKEN = "oanda-token-s3cr3t-7f9a"
ACCOUNT = "101-001-1234567-001"
POST_ORDERS = f"POST /v3/accounts/{ACCOUNT}/orders"


def settings(url: str, *, token: str = TOKEN, timeout: float = 2.0, silence: float = 5.0) -> OandaSettings:
    return OandaSettings.from_env(Env({"OANDA_API_TOKEN": token, "OANDA_ACCOUNT_ID": ACCOUNT,
                                       "QUANTMESH_OANDA_REST_URL": url, "QUANTMESH_OANDA_STREAM_URL": url,
                                       "QUANTMESH_VENUE_TIMEOUT_SECONDS": str(timeout),
                                       "QUANTMESH_VENUE_POLL_SECONDS": "0.05",
                                       "QUANTMESH_VENUE_STREAM_SILENCE_SECONDS": str(silence)}))


@asynccontextmanager
async def running(fake: FakeOanda, **options):
    """The adapter against the fake, closed after the test."""
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url, **options))
        try:
            yield broker
        finally:
            await broker.close()


def market(cid: str, side: str = "buy", qty: str = "10000") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="USD_JPY", side=side,
                       quantity=Decimal(qty), order_type="market")


def limit(cid: str, price: str, qty: str = "1000") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="USD_JPY", side="buy",
                       quantity=Decimal(qty), order_type="limit", limit_price=Decimal(price))



def posts(fake: FakeOanda) -> int:
    return fake.requests.count(POST_ORDERS)


async def test_market_order_fills_and_is_found_by_client_id_and_in_positions():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        ack = await broker.submit(market("c-1", side="sell"))
        assert ack.state == "filled" and ack.filled_quantity == Decimal("10000")
        assert ack.fills[0].price == Decimal(FILL_PRICE) and ack.fills[0].broker_fill_id.startswith("oanda-")
        assert fake.orders[0]["units"] == "-10000" and fake.orders[0]["timeInForce"] == "FOK"
        found = await broker.lookup("c-1")
        assert found is not None and found.broker_order_id == ack.broker_order_id
        assert found.fills == ack.fills  # same ids: the engine books each fill once
        assert await broker.lookup("never-sent") is None
        [position] = await broker.positions("acct")
        assert position.instrument == "USD_JPY" and position.quantity == Decimal("-10000")


async def test_a_fill_without_the_deprecated_price_field_is_read_from_the_trades():
    fake = FakeOanda(TOKEN, ACCOUNT, deprecated_price=False)
    async with running(fake) as broker:
        ack = await gateway(broker).submit(market("c-noprice"))
        assert ack.state == "filled" and [f.price for f in ack.fills] == [Decimal(FILL_PRICE)]
        assert posts(fake) == 1 and len(fake.fills) == 1


async def test_a_sell_against_a_long_is_booked_from_trades_closed_and_trade_opened():
    fake = FakeOanda(TOKEN, ACCOUNT, deprecated_price=False)
    async with running(fake) as broker:
        await broker.submit(market("c-long", qty="1000"))
        ack = await broker.submit(market("c-flip", side="sell", qty="1500"))
        closed, opened = ack.fills
        assert "-close-" in closed.broker_fill_id and closed.quantity == Decimal("1000")
        assert "-open-" in opened.broker_fill_id and opened.quantity == Decimal("500")
        assert ack.state == "filled" and ack.filled_quantity == Decimal("1500")


async def test_timeout_after_the_venue_accepted_gives_the_accepted_order_and_no_duplicate():
    fake = FakeOanda(TOKEN, ACCOUNT, reply_delay=1.5)
    async with running(fake, timeout=0.3) as broker:
        ack = await gateway(broker).submit(market("c-timeout"))
        assert len(fake.orders) == 1, "a retry after the timeout created a second order"
        assert ack.broker_order_id == fake.orders[0]["id"] and ack.state == "filled"
        assert posts(fake) == 1


async def test_timeout_and_a_failed_lookup_leave_the_outcome_unknown_and_exactly_one_fill():
    # Issue 17 bug 1: the old adapter raised a retryable error here and the gateway POSTed again;
    # OANDA accepts the reused client id since the first order is filled, not pending: 2 fills.
    fake = FakeOanda(TOKEN, ACCOUNT, reply_delay=1.0, lookup_failures=1)
    async with running(fake, timeout=0.3) as broker:
        with pytest.raises(OutcomeUnknown, match="not sent again"):
            await gateway(broker).submit(market("c-doubt"))
        assert posts(fake) == 1 and len(fake.fills) == 1
        found = await broker.lookup("c-doubt")  # what the engine does next
        assert found is not None and found.state == "filled" and len(found.fills) == 1


async def test_a_reply_cut_after_acceptance_is_adopted_or_unknown_never_resent():
    fake = FakeOanda(TOKEN, ACCOUNT, drop_replies=1)
    async with running(fake) as broker:
        ack = await gateway(broker).submit(market("c-cut"))
        assert ack.state == "filled" and posts(fake) == 1 and len(fake.fills) == 1
        fake.drop_replies, fake.lookup_failures = 1, 1
        with pytest.raises(OutcomeUnknown):
            await gateway(broker).submit(market("c-cut-2"))
        assert posts(fake) == 2 and len(fake.fills) == 2


async def test_numbers_follow_the_instrument_precision_and_misfits_are_refused_before_sending():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        ack = await broker.submit(market("c-exp", qty="1E+4"))  # str(Decimal) would send "1E+4"
        assert ack.state == "filled" and fake.orders[0]["units"] == "10000"
        await broker.submit(limit("c-zeros", "149.5000"))
        assert fake.orders[1]["price"] == "149.5"
        with pytest.raises(BrokerRejected, match="size step 1") as caught:
            await broker.submit(market("c-frac", qty="10000.5"))
        assert caught.value.rule == "venue.precision"
        with pytest.raises(BrokerRejected, match="price step 0.001") as caught:
            await broker.submit(limit("c-tick", "149.1234"))
        assert caught.value.rule == "venue.precision" and posts(fake) == 2


async def test_limit_order_rests_is_followed_to_its_fill_and_cancels_by_client_id():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        ack = await broker.submit(limit("lim-1", "149.500"))
        assert ack.state == "new" and not ack.fills and fake.orders[0]["type"] == "LIMIT"
        follow = broker.executions()
        first = asyncio.ensure_future(follow.__anext__())
        await fake.summary_served.wait()  # the follower knows where the log stood
        fake.fill_pending("lim-1", "149.500")
        execution = await asyncio.wait_for(first, timeout=10)
        assert execution.client_order_id == "lim-1" and execution.fill.price == Decimal("149.500")
        await follow.aclose()
        await broker.submit(limit("lim-2", "149.000"))
        canceled = await broker.cancel("lim-2")
        assert canceled.state == "canceled" and fake.orders[-1]["state"] == "CANCELLED"
        with pytest.raises(BrokerRejected, match="no open order"):
            await broker.cancel("lim-2")


async def test_a_client_id_held_by_a_pending_order_is_refused_by_oanda_and_adopted():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        first = await broker.submit(limit("c-dup", "149.000"))
        again = await broker.submit(limit("c-dup", "149.000"))
        assert len(fake.orders) == 1 and again.broker_order_id == first.broker_order_id


async def test_a_storm_of_429s_slows_the_gateway_down_and_then_succeeds():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        await broker.rules("USD_JPY")
        await rides_out_a_429_storm(broker, fake, market("c-429"))


async def test_a_429_storm_longer_than_the_attempts_fails_with_a_clear_error():
    fake = FakeOanda(TOKEN, ACCOUNT, throttle=10)
    async with running(fake) as broker:
        with pytest.raises((BrokerOverloaded, RetryableBrokerError), match="OANDA.*429"):
            await gateway(broker, attempts=3).submit(market("c-storm"))
        assert fake.orders == []


async def test_an_unreadable_reply_is_resolved_by_lookup_or_stays_unknown_and_records_no_fill():
    fake = FakeOanda(TOKEN, ACCOUNT, malformed={"json"})
    async with running(fake) as broker:
        ack = await broker.submit(market("c-bad"))  # OANDA answered 201: it has the order
        assert ack.state == "filled" and len(fake.orders) == 1
        fake.malformed = {"json", "lookup"}
        with pytest.raises(OutcomeUnknown) as caught:
            await broker.submit(market("c-worse"))
    message = str(caught.value)
    assert message.startswith("OANDA") and "not JSON" in message and "'state'" in message
    assert len(fake.orders) == 2  # the venue has it; the engine keeps the order SUBMITTED, with no fill


async def test_a_wrong_token_is_refused_and_the_token_never_reaches_logs_or_errors(caplog):
    fake = FakeOanda(TOKEN, ACCOUNT)
    wrong = "wrong-token-0xDEADBEEF"
    caplog.set_level(logging.DEBUG)
    async with running(fake, token=wrong) as broker:
        with pytest.raises((BrokerRejected, RetryableBrokerError), match="401") as caught:
            await broker.submit(market("c-auth"))
        good = settings("http://127.0.0.1:9")
    for text in (caplog.text, str(caught.value), repr(caught.value), repr(good), str(good), repr(broker.__dict__)):
        assert wrong not in text and TOKEN not in text


async def test_pricing_stream_reconnects_after_a_disconnect_and_after_silence():
    fake = FakeOanda(TOKEN, ACCOUNT, stream_script=[
        ["heartbeat", "price", "garbage", "price", "close"],        # drops after two quotes
        ["price", "heartbeat"],                                     # then goes silent past the timeout
        ["heartbeat", "price", "heartbeat", "price", "price"],
    ])
    async with serving(fake.app()) as url:
        feed = OandaFeed(settings(url, silence=0.5), ("USD_JPY",), backoff=Backoff(initial=0.05, maximum=0.2))
        ticks = []

        async def take():
            async for tick in feed.ticks():
                ticks.append(tick)
                if len(ticks) == 6:
                    return
        await asyncio.wait_for(take(), timeout=20)
    assert fake.stream_connections == 3
    assert feed.backoff.reconnects == 2 and feed.heartbeats >= 3
    assert feed.stats.malformed == 1
    assert all(t.instrument == "USD_JPY" and t.ask > t.bid for t in ticks)
    assert ticks[0].bid == Decimal("150.001") and ticks[0].time.tzinfo is not None


async def _until(check, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


@asynccontextmanager
async def protected_entry(quantity: int = 10000, trailing_stop: Decimal | None = Decimal("0.200"),
                          follow_executions: bool = True):
    """An order engine over OANDA (the fake), with a filled 10,000 USD_JPY entry that asked for a
    stop-loss 0.300, a take-profit 0.500 and a trailing stop 0.200 (the size and the trailing stop
    as asked; without following executions, only look-ups tell the engine what OANDA did)."""
    from services.common.clock import WallClock
    from services.order.engine import build_engine
    from services.order.intents import Intent
    from services.order.repository import MemoryOrderStore
    from services.order.risk import RiskLimits
    from tests.unit.order.conftest import FlagsStub

    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        store = MemoryOrderStore()
        engine = build_engine(store=store, broker=broker, flags=FlagsStub(), exposure=None, limits=RiskLimits(),
                              clock=WallClock())
        await engine.start(follow_executions=follow_executions)
        try:
            entry, _ = await engine.submit(Intent(
                client_order_id="oanda-protected", strategy_slug="ma_cross", role="entry", instrument="USD_JPY",
                side="buy", quantity=Decimal(quantity), order_type="market", time_in_force="IOC", account="acct",
                stop_loss_distance=Decimal("0.300"), take_profit_distance=Decimal("0.500"),
                trailing_stop_distance=trailing_stop))
            yield fake, engine, store, entry
        finally:
            await engine.stop()


async def test_an_entry_carries_its_stop_loss_and_trailing_stop_on_fill_and_one_close_ends_them_all():
    """stopLossOnFill / trailingStopLossOnFill: OANDA creates them on the entry's trade; the order plane
    records them by the client ids it gave and places the take-profit on that trade (TAKE_PROFIT by
    clientTradeID) at the fill price plus its distance; when the stop-loss closes the trade, OANDA
    cancels the other two (LINKED_TRADE_CLOSED): one close."""
    from services.order.states import OrderState as S

    async with protected_entry() as (fake, engine, store, entry):
        assert entry.state == S.FILLED and entry.average_fill_price == Decimal(FILL_PRICE)
        sl_id, ts_id = f"{entry.order_id}.f:sl", f"{entry.order_id}.f:ts"
        sent = fake.orders[0]
        assert sent["stopLossOnFill"] == {"distance": "0.3", "timeInForce": "GTC", "clientExtensions": {"id": sl_id}}
        assert sent["trailingStopLossOnFill"] == {"distance": "0.2", "timeInForce": "GTC",
                                                  "clientExtensions": {"id": ts_id}}
        assert sent["tradeClientExtensions"] == {"id": entry.order_id}
        sl = await engine.get(client_order_id=sl_id)
        ts = await engine.get(client_order_id=ts_id)
        at_oanda = {o["clientExtensions"]["id"]: o for o in fake.orders}
        assert (sl.state, sl.intent.order_type, sl.intent.stop_price, sl.broker_order_id) == (
            S.NEW, "stop", Decimal("149.823"), at_oanda[sl_id]["id"])
        assert at_oanda[sl_id]["price"] == "149.823"  # OANDA's own price from the distance: the same
        assert (ts.state, ts.intent.order_type, ts.intent.trail_distance, ts.intent.stop_price) == (
            S.NEW, "trailing_stop", Decimal("0.200"), Decimal("149.923"))
        tp = await engine.get(client_order_id=f"{entry.order_id}.f:tp")
        assert (tp.intent.order_type, tp.intent.limit_price, tp.state) == ("limit", Decimal("150.623"), S.NEW)
        on_trade = at_oanda[tp.intent.client_order_id]
        assert (on_trade["type"], on_trade["tradeID"], on_trade["price"]) == (
            "TAKE_PROFIT", fake.trades[0]["id"], "150.623")
        assert posts(fake) == 2  # the entry and the take-profit: the stops were never sent on their own
        assert len(engine.journal.working_orders()) == 3  # nothing placed twice

        fake.fill_pending(sl_id, "149.820")  # the market falls through the stop-loss
        states = {sl_id: S.FILLED, ts_id: S.CANCELED, tp.intent.client_order_id: S.CANCELED}

        async def settled():
            return all([(await engine.get(client_order_id=c)).state == s for c, s in states.items()])

        await _until(settled)
        assert engine.book.strategy("acct", "ma_cross", "USD_JPY") == 0
        assert [(f.side, f.price, f.quantity) for f in store._fills] == [
            ("buy", Decimal(FILL_PRICE), 10000), ("sell", Decimal("149.820"), 10000)]
        for cid in (ts_id, tp.intent.client_order_id):  # OANDA's own cancel, read from its log
            assert "LINKED_TRADE_CLOSED" in (await engine.get(client_order_id=cid)).reason


async def test_a_partial_exit_leaves_the_trades_protection_where_it_is():
    """They belong to the trade: OANDA closes what is left of it with them, so a partial close
    neither cancels nor re-places anything (no moment without a stop)."""
    from services.order.intents import Intent
    from services.order.states import OrderState as S

    async with protected_entry() as (fake, engine, store, entry):
        before = {o.intent.client_order_id for o in engine.journal.working_orders()}
        exit_, _ = await engine.submit(Intent(
            client_order_id="oanda-part", strategy_slug="ma_cross", role="exit", instrument="USD_JPY", side="sell",
            quantity=Decimal(4000), order_type="market", time_in_force="IOC", account="acct", reduce_only=True))
        assert exit_.state == S.FILLED and engine.book.strategy("acct", "ma_cross", "USD_JPY") == 6000
        assert {o.intent.client_order_id for o in engine.journal.working_orders()} == before
        assert posts(fake) == 3  # entry, take-profit, the exit: nothing canceled or sent again
        assert not [r for r in fake.requests if r.endswith("/cancel")]


async def _partly_closed(engine, fake):
    """The strategy's exit closes 400 of the entry's 1,000 units: OANDA reduces the trade to 600."""
    from services.order.intents import Intent
    from services.order.states import OrderState as S

    exit_, _ = await engine.submit(Intent(
        client_order_id="oanda-part-400", strategy_slug="ma_cross", role="exit", instrument="USD_JPY", side="sell",
        quantity=Decimal(400), order_type="market", time_in_force="IOC", account="acct", reduce_only=True))
    assert exit_.state == S.FILLED and engine.book.strategy("acct", "ma_cross", "USD_JPY") == 600
    assert [t["units"] for t in fake.trades] == [Decimal(600)]


async def test_a_stop_loss_that_closes_what_a_partial_exit_left_of_its_trade_ends_filled():
    """OANDA's stop-loss closes what is left of its trade and is then FILLED: after a partial exit of
    400, the stop-loss recorded for the entry's 1,000 fills 600. The order must end FILLED at 600 (its
    real fill), not stay PARTIALLY_FILLED for ever: a working order that protection and reconciliation
    keep looking at, and that the venue will never fill again."""
    from services.order.states import OrderState as S

    async with protected_entry(quantity=1000, trailing_stop=None) as (fake, engine, store, entry):
        sl_id, tp_id = f"{entry.order_id}.f:sl", f"{entry.order_id}.f:tp"
        sl = await engine.get(client_order_id=sl_id)
        assert (sl.state, sl.intent.quantity, sl.intent.stop_price) == (S.NEW, 1000, Decimal("149.823"))
        await _partly_closed(engine, fake)

        [fill] = fake.quote("USD_JPY", bid="149.800", ask="149.810")  # the market falls through the stop-loss
        assert (fill["clientOrderID"], fill["units"]) == (sl_id, "-600")

        async def settled():  # the take-profit's cancel comes after the stop-loss's fill in OANDA's log
            sl_now, tp_now = await engine.get(client_order_id=sl_id), await engine.get(client_order_id=tp_id)
            return sl_now.filled_quantity == 600 and tp_now.state == S.CANCELED

        await _until(settled)
        sl = await engine.get(client_order_id=sl_id)
        assert (sl.state, sl.filled_quantity, sl.average_fill_price) == (S.FILLED, 600, Decimal("149.800"))
        assert sl.reason == ("the venue finished the order at 600 of 1000: the trade it was bound to had less "
                             "left")
        assert engine.book.strategy("acct", "ma_cross", "USD_JPY") == 0 and fake.trades == []
        assert [o.intent.client_order_id for o in engine.journal.working_orders()
                if o.intent.strategy_slug == "ma_cross"] == []
        assert [(f.side, f.price, f.quantity) for f in store._fills] == [
            ("buy", Decimal(FILL_PRICE), 1000), ("sell", Decimal(FILL_PRICE), 400), ("sell", Decimal("149.800"), 600)]


async def test_reconciliation_finishes_a_stop_loss_that_closed_the_rest_of_its_trade():
    """The same, told by a look-up (GET /orders/@{clientID}: FILLED, with its filling transaction)
    instead of the transaction log: reconciliation books the 600 and finishes the order."""
    from services.order.states import OrderState as S

    async with protected_entry(quantity=1000, trailing_stop=None, follow_executions=False) as (
            fake, engine, store, entry):
        sl_id, tp_id = f"{entry.order_id}.f:sl", f"{entry.order_id}.f:tp"
        await _partly_closed(engine, fake)
        fake.quote("USD_JPY", bid="149.800", ask="149.810")
        sl, tp = await engine.get(client_order_id=sl_id), await engine.get(client_order_id=tp_id)
        changed = await engine.venue.reconcile_orders()
        assert sorted(changed) == sorted([(sl.order_id, "NEW", "FILLED"), (tp.order_id, "NEW", "CANCELED")])
        sl = await engine.get(client_order_id=sl_id)
        assert (sl.state, sl.filled_quantity) == (S.FILLED, 600) and "600 of 1000" in sl.reason
        assert engine.book.strategy("acct", "ma_cross", "USD_JPY") == 0
        assert await engine.venue.reconcile_orders() == []  # nothing open is left to ask about


def test_a_trailing_stop_order_alone_is_refused_before_sending():
    from services.order.brokers.oanda_wire import order_body
    with pytest.raises(BrokerRejected, match="trailingStopLossOnFill") as refused:
        order_body(BrokerOrder(client_order_id="t", account="acct", instrument="USD_JPY", side="sell",
                               quantity=Decimal(1000), order_type="trailing_stop", trail_distance=Decimal("0.2")))
    assert refused.value.rule == "venue.order_type"


async def test_an_on_fill_distance_finer_than_the_instrument_is_refused_before_sending():
    from services.order.brokers.base import ProtectionOnFill
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with running(fake) as broker:
        order = BrokerOrder(client_order_id="fine", account="acct", instrument="USD_JPY", side="buy",
                            quantity=Decimal(1000), order_type="market",
                            on_fill=ProtectionOnFill(stop_loss=Decimal("0.3001"), stop_loss_id="x.f:sl"))
        with pytest.raises(BrokerRejected, match="0.3001") as refused:
            await broker.submit(order)
        assert refused.value.rule == "venue.precision" and posts(fake) == 0
