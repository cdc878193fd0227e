"""GMO Coin broker and ticker feed against a loopback GMO Coin that keeps GMO's documented rules.

Each GMO bug of issue 17 has a test here that fails on the old adapter: an accepted order
recorded as rejected when the follow-up read is busy, margin exits that open the opposite
side, resting fills never booked, the intent's time in force dropped, numbers beyond the
symbol's steps, and an order in flight forgotten across a restart.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import asyncpg
import pytest

from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.venues import GmoSettings
from services.market_data.feeds.gmo import GmoFeed
from services.market_data.feeds.oanda import Backoff
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, OutcomeUnknown
from services.order.brokers.gmo import GmoBroker
from services.order.brokers.gmo_orders import MemorySentOrders, PostgresSentOrders
from services.order.states import OrderState as S
from tests.integration.venues.fakes.gmo_server import FILL_PRICE, FakeGmo
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.roads import MovedClock, gateway, limit_intent, order_plane, rides_out_a_429_storm

KEY, SECRET = "gmo-key-abc123", "gmo-secret-zz9-plural-z-alpha"
ORDER_POSTS = ("POST /private/v1/order", "POST /private/v1/closeOrder", "POST /private/v1/closeBulkOrder")


def settings(url: str, *, secret: str = SECRET, timeout: float = 2.0, silence: float = 5.0) -> GmoSettings:
    return GmoSettings.from_env(Env({"GMO_API_KEY": KEY, "GMO_API_SECRET": secret, "QUANTMESH_GMO_REST_URL": url,
                                     "QUANTMESH_GMO_WS_URL": url.replace("http", "ws") + "/ws/public/v1",
                                     "QUANTMESH_VENUE_TIMEOUT_SECONDS": str(timeout),
                                     "QUANTMESH_VENUE_STREAM_SILENCE_SECONDS": str(silence)}), trading=True)


def order(cid: str, kind: str = "market", side: str = "buy", qty: str = "0.01", price: str | None = None,
          symbol: str = "BTC_JPY", role: str = "entry", tif: str = "GTC") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument=symbol, side=side, quantity=Decimal(qty),
                       order_type=kind, limit_price=Decimal(price) if price else None, role=role, time_in_force=tif)



def order_posts(fake: FakeGmo) -> list[str]:
    return [r for r in fake.requests if r in ORDER_POSTS]


@asynccontextmanager
async def running(fake: FakeGmo, sent=None, clock=None, **options):
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url, **options), sent=sent, clock=clock)
        try:
            yield broker
        finally:
            await broker.close()


class Later(WallClock):
    """The wall clock a minute on: a process restarted well after its last send."""

    def now(self):
        return super().now() + timedelta(minutes=1)


async def test_market_order_fills_signed_and_lookup_and_positions_work():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-1"))
        assert ack.state == "filled" and ack.fills[0].price == Decimal(FILL_PRICE)
        assert ack.fills[0].quantity == Decimal("0.01") and ack.broker_order_id == str(fake.orders[0]["orderId"])
        assert (await broker.lookup("g-1")).broker_order_id == ack.broker_order_id
        assert await broker.lookup("unknown") is None
        again = await broker.submit(order("g-1"))  # GMO is not idempotent; the adapter is
        assert len(fake.orders) == 1 and again.broker_order_id == ack.broker_order_id
        [position] = await broker.positions("acct")
        assert (position.instrument, position.side, position.quantity) == ("BTC_JPY", "long", Decimal("0.01"))


async def test_an_order_accepted_then_answered_busy_is_new_not_rejected():
    # Issue 17 bug 3: the follow-up GET /v1/orders answering ERR-626 / ERR-5201 became a final reject.
    for code in ("ERR-626", "ERR-5201"):
        fake = FakeGmo(KEY, SECRET, busy_reads=[code])
        async with running(fake) as broker:
            ack = await gateway(broker).submit(order(f"g-busy-{code}"))
            assert ack.state == "new" and ack.broker_order_id == str(fake.orders[0]["orderId"])
            found = await broker.lookup(f"g-busy-{code}")
            assert found.state == "filled" and len(found.fills) == 1 and len(order_posts(fake)) == 1


async def test_busy_answered_to_the_post_itself_is_searched_for_not_rejected_nor_resent():
    fake = FakeGmo(KEY, SECRET, busy_after_post="ERR-626")
    async with running(fake) as broker:
        ack = await gateway(broker).submit(order("g-post-busy"))
        assert ack.broker_order_id == str(fake.orders[0]["orderId"]) and ack.state == "filled"
        assert len(order_posts(fake)) == 1


async def test_a_margin_exit_closes_the_long_with_close_order_instead_of_opening_a_short():
    # Issue 17 bug 4: a SELL exit went to /v1/order, which opens a short beside the long.
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("g-long", qty="0.03"))
        position_id = fake.positions[0]["positionId"]
        ack = await broker.submit(order("g-exit", side="sell", qty="0.02", role="exit"))
        assert ack.state == "filled" and order_posts(fake)[-1] == "POST /private/v1/closeOrder"
        assert fake.bodies[-1]["settlePosition"] == [{"positionId": position_id, "size": "0.02"}]
        assert (await broker.sent.get("g-exit")).position_id == position_id  # kept durably
        [left] = await broker.positions("acct")
        assert (left.side, left.quantity) == ("long", Decimal("0.01"))


async def test_an_exit_over_several_positions_is_one_close_bulk_order_and_too_big_an_exit_is_refused():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("g-a", qty="0.01"))
        await broker.submit(order("g-b", qty="0.02"))
        with pytest.raises(BrokerRejected, match="holds only 0.03") as caught:
            await broker.submit(order("g-huge", side="sell", qty="0.05", role="exit"))
        assert caught.value.rule == "venue.close_exceeds_position"
        ack = await broker.submit(order("g-all", side="sell", qty="0.03", role="exit"))
        assert ack.state == "filled" and order_posts(fake)[-1] == "POST /private/v1/closeBulkOrder"
        assert fake.positions == [] and await broker.positions("acct") == []


async def test_an_entry_against_a_long_opens_a_short_and_positions_show_both_sides():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("g-long"))
        await broker.submit(order("g-short", side="sell"))  # an entry: GMO opens a new position
        views = await broker.positions("acct")
        assert [(v.side, v.quantity) for v in views] == [("long", Decimal("0.01")), ("short", Decimal("-0.01"))]


async def test_time_in_force_is_passed_through():
    # Issue 17 bug 7: an IOC limit was sent without timeInForce and rested as FAS.
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-ioc", kind="limit", price="9000000", tif="IOC"))
        assert fake.bodies[-1]["timeInForce"] == "FAK" and ack.state == "expired"
        await broker.submit(order("g-gtc", kind="limit", price="9000000"))
        assert fake.bodies[-1]["timeInForce"] == "FAS" and fake.orders[-1]["status"] == "ORDERED"
        await broker.submit(order("g-fok", kind="limit", price="9000000", tif="FOK"))
        assert fake.bodies[-1]["timeInForce"] == "FOK"


async def test_numbers_follow_the_symbol_steps_and_misfits_are_refused_before_sending():
    # Issue 17 bug 8: str(Decimal) sent "1E-2"; a size beyond sizeStep went to GMO (ERR-5114).
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("g-exp", qty="1E-2"))
        assert fake.bodies[-1]["size"] == "0.01"
        with pytest.raises(BrokerRejected, match="0.012345 BTC has more decimals than GMO Coin's BTC_JPY size "
                                                 "step 0.01") as caught:
            await broker.submit(order("g-fine", qty="0.012345"))
        assert caught.value.rule == "venue.precision"
        with pytest.raises(BrokerRejected, match="price step 1"):
            await broker.submit(order("g-tick", kind="limit", price="9000000.5"))
        with pytest.raises(BrokerRejected, match="maximum order size 5"):
            await broker.submit(order("g-huge", qty="6"))
        assert len(order_posts(fake)) == 1 and await broker.lookup("g-fine") is None


async def test_a_resting_limit_fill_and_the_partial_fill_of_a_canceled_order_are_followed():
    # Issue 17 bug 5: executions() ended at once; resting fills and cancels were never seen.
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-rest", kind="limit", price="9000000", qty="0.05"))
        assert ack.state == "new" and await broker.poll() == []
        fake.execute(int(ack.broker_order_id), "0.02")
        [fill] = await broker.poll()
        assert fill.fill.quantity == Decimal("0.02") and fill.state == "partially_filled"
        fake.execute(int(ack.broker_order_id), "0.01")
        fake.orders[0].update(status="CANCELED", cancelType="INSUFFICIENT_MARGIN")  # GMO cancels the rest itself
        news = await broker.poll()
        assert [(n.state, n.fill.quantity if n.fill else None) for n in news] == [
            ("canceled", Decimal("0.01")), ("canceled", None)]
        assert await broker.poll() == [] and (await broker.sent.get("g-rest")).finished


async def test_timeout_after_gmo_accepted_finds_the_order_and_never_posts_twice():
    fake = FakeGmo(KEY, SECRET, reply_delay=1.5)
    async with running(fake, timeout=0.3) as broker:
        ack = await gateway(broker).submit(order("g-timeout"))
        assert len(fake.orders) == 1
        assert ack.broker_order_id == str(fake.orders[0]["orderId"]) and ack.state == "filled"
        assert order_posts(fake) == ["POST /private/v1/order"]


async def test_an_order_in_doubt_that_gmo_does_not_list_yet_is_never_reported_absent_nor_resent():
    fake = FakeGmo(KEY, SECRET, reply_delay=1.0, hide_from_lists=True)
    async with running(fake, timeout=0.3) as broker:
        with pytest.raises(OutcomeUnknown, match="never posted twice"):
            await gateway(broker, attempts=3).submit(order("g-ghost", kind="limit", price="9000000"))
        assert order_posts(fake) == ["POST /private/v1/order"]
        with pytest.raises(OutcomeUnknown):  # "don't know", never None ("no such order")
            await broker.lookup("g-ghost")
        fake.hide_from_lists = False
        found = await broker.lookup("g-ghost")
        assert found is not None and found.broker_order_id == str(fake.orders[0]["orderId"])
        assert len(fake.orders) == 1


async def test_an_order_in_flight_across_a_restart_is_resolved_from_the_durable_record(database_url):
    # Issue 17 bug 5: after a restart the in-memory map was gone and recovery marked the order REJECTED.
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        fake = FakeGmo(KEY, SECRET, reply_delay=1.0, hide_from_lists=True)
        async with running(fake, sent=await PostgresSentOrders.open(pool), timeout=0.3) as broker:
            with pytest.raises(OutcomeUnknown):
                await broker.submit(order("g-restart"))
            with pytest.raises(OutcomeUnknown):
                await broker.submit(order("g-never", side="sell"))
        fake.orders = [o for o in fake.orders if o["side"] == "BUY"]  # GMO never created the second one
        fake.executions = [e for e in fake.executions if e["side"] == "BUY"]
        fake.hide_from_lists, fake.reply_delay = False, 0.0
        async with running(fake, sent=await PostgresSentOrders.open(pool), clock=Later()) as restarted:
            found = await restarted.lookup("g-restart")
            assert found.state == "filled" and found.broker_order_id == str(fake.orders[0]["orderId"])
            assert await restarted.lookup("g-never") is None  # proven absent, a minute after the send
            assert await restarted.lookup("g-other") is None
        assert len(order_posts(fake)) == 2
    finally:
        await pool.close()


async def test_err_5003_storm_slows_down_then_succeeds_or_fails_clearly():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.rules("BTC_JPY")
        await rides_out_a_429_storm(broker, fake, order("g-429"))
        fake.throttle = 10
        with pytest.raises(BrokerOverloaded, match="GMO Coin.*ERR-5003"):
            await gateway(broker, attempts=2).submit(order("g-storm"))
        assert len(fake.orders) == 1


@pytest.mark.parametrize("mode", ["json", "order_id", "executions"])
async def test_malformed_replies_never_post_twice_and_record_no_fill(mode):
    fake = FakeGmo(KEY, SECRET, malformed={mode})
    async with running(fake) as broker:
        ack = await broker.submit(order("g-bad"))
        assert ack.broker_order_id == str(fake.orders[0]["orderId"]) and len(fake.orders) == 1
        if mode == "executions":  # accepted, fills unreadable: reported new, fills come later
            assert ack.state == "new" and ack.fills == ()


async def test_limit_order_rests_and_cancels():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-lim", kind="limit", price="9000000"))
        assert ack.state == "new" and fake.orders[0]["executionType"] == "LIMIT"
        canceled = await broker.cancel("g-lim")
        assert canceled.state == "canceled"
        with pytest.raises(BrokerRejected, match="ERR-5122"):
            await broker.cancel("g-lim")


async def test_a_wrong_signature_gets_gmo_error_and_secrets_stay_out_of_logs_and_errors(caplog):
    fake = FakeGmo(KEY, SECRET)
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-secret-0xC0FFEE"
    async with running(fake, secret=wrong) as broker:
        with pytest.raises(BrokerRejected, match="ERR-5010") as caught:
            await broker.submit(order("g-auth"))
    config = settings("http://127.0.0.1:9")
    assert fake.orders == [] and await MemorySentOrders().get("g-auth") is None
    for text in (caplog.text, str(caught.value), repr(caught.value), repr(config), str(config)):
        for secret in (wrong, SECRET, KEY):
            assert secret not in text


def test_gmo_trading_refuses_practice_without_a_test_server_and_budgets_gmo_tier_1():
    with pytest.raises(ConfigError, match="no practice system"):
        GmoSettings.from_env(Env({"GMO_API_KEY": KEY, "GMO_API_SECRET": SECRET}), trading=True)
    with pytest.raises(ConfigError, match="GMO_API_KEY"):
        GmoSettings.from_env(Env({"QUANTMESH_VENUE_ENV": "live"}), trading=True)
    public = GmoSettings.from_env(Env({}), trading=False)
    assert public.ws_url == "wss://api.coin.z.com/ws/public/v1"
    assert (public.get_per_second, public.post_per_second) == (20.0, 20.0)  # issue 17 bug 10: was 200/s


async def test_ticker_socket_reconnects_after_close_and_after_silence():
    fake = FakeGmo(KEY, SECRET, ws_script=[["ticker", "garbage", "ticker", "close"], ["ticker"],
                                           ["ticker", "ticker", "ticker"]])
    async with serving(fake.app()) as url:
        feed = GmoFeed(settings(url, silence=0.5), ("BTC_JPY",), backoff=Backoff(initial=0.05, maximum=0.2),
                       subscribe_pause=0.0)
        ticks = []

        async def take():
            async for tick in feed.ticks():
                ticks.append(tick)
                if len(ticks) == 6:
                    return
        await asyncio.wait_for(take(), timeout=20)
    assert fake.ws_connections == 3 and feed.backoff.reconnects == 2
    assert fake.subscriptions[0] == {"command": "subscribe", "channel": "ticker", "symbol": "BTC_JPY"}
    assert feed.stats.malformed == 1
    assert all(t.instrument == "BTC_JPY" and t.ask > t.bid and t.volume == 0 for t in ticks)


async def test_a_protective_stop_is_sent_as_a_gmo_stop_closing_the_long():
    """Protection held at the venue: a reduce-only STOP exit on a margin symbol closes the long with
    closeOrder, executionType STOP, the trigger as price at the symbol's step, GMO's default time in force."""
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("g-long", side="buy", qty="0.02"))
        stop = BrokerOrder(client_order_id="g-long:sl", account="acct", instrument="BTC_JPY", side="sell",
                           quantity=Decimal("0.02"), order_type="stop", stop_price=Decimal("8900000"), role="exit",
                           reduce_only=True, time_in_force="GTC")
        ack = await broker.submit(stop)
        body = fake.bodies[-1]
        assert (body["executionType"], body["price"], body["side"]) == ("STOP", "8900000", "SELL")
        assert "timeInForce" not in body and "settlePosition" in body  # a close order, not a new short
        assert ack.state == "new"


# ---- executions listed after the order's end --------------------------------------------------
# GMO's executions (/v1/executions) can lag the order's status and executedSize: EXECUTED or
# CANCELED with executions missing. Finishing the order then would book them never (canceled is
# final) or only at reconciliation.


async def test_an_order_executed_before_its_last_execution_is_listed_is_followed_until_it_is():
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-lag", kind="limit", price="9000000", qty="0.05"))
        fake.execute(int(ack.broker_order_id), "0.02")
        [first] = await broker.poll()
        assert (first.state, first.fill.quantity) == ("partially_filled", Decimal("0.02"))
        fake.lag_executions = True
        fake.execute(int(ack.broker_order_id), "0.03")
        assert fake.orders[0]["status"] == "EXECUTED" and len(fake.unlisted) == 1
        assert await broker.poll() == []  # EXECUTED, but 0.03 of it not yet listed
        found = await broker.lookup("g-lag")
        assert (found.state, found.filled_quantity) == ("partially_filled", Decimal("0.02"))
        assert not (await broker.sent.get("g-lag")).finished
        fake.list_executions()
        [second] = await broker.poll()
        assert (second.state, second.fill.quantity) == ("filled", Decimal("0.03"))
        assert await broker.poll() == [] and (await broker.sent.get("g-lag")).finished
        found = await broker.lookup("g-lag")
        assert found.state == "filled" and [f.quantity for f in found.fills] == [Decimal("0.02"), Decimal("0.03")]


async def test_a_market_order_executed_before_its_execution_is_listed_is_new_until_it_is():
    fake = FakeGmo(KEY, SECRET, lag_executions=True)
    async with running(fake) as broker:
        ack = await broker.submit(order("g-lag-mkt"))
        assert fake.orders[0]["status"] == "EXECUTED"
        assert (ack.state, ack.fills) == ("new", ())  # not "filled" with no fill to book
        assert await broker.poll() == []
        fake.list_executions()
        [news] = await broker.poll()
        assert (news.state, news.fill.quantity, news.fill.broker_fill_id) == (
            "filled", Decimal("0.01"), f"gmo-{fake.executions[0]['executionId']}")


@pytest.mark.parametrize("end", ["filled", "canceled"])
async def test_the_order_plane_books_every_fill_of_an_order_ended_before_its_executions_are_listed(end):
    fake = FakeGmo(KEY, SECRET)
    async with running(fake) as broker, order_plane(broker) as plane:
        placed, _ = await plane.engine.submit(limit_intent("g-plane", "BTC_JPY", "0.05", "9000000"))
        assert placed.state == S.NEW
        order_id = int(placed.broker_order_id)
        fake.execute(order_id, "0.02")
        fake.lag_executions = True
        fake.execute(order_id, "0.03" if end == "filled" else "0.01")
        if end == "canceled":
            fake.orders[0].update(status="CANCELED", cancelType="INSUFFICIENT_MARGIN")
        await plane.follow(broker)
        waiting = await plane.order("g-plane")
        assert (waiting.state, waiting.filled_quantity) == (S.PARTIALLY_FILLED, Decimal("0.02"))  # kept open
        fake.list_executions()
        await plane.follow(broker)
        done = await plane.order("g-plane")
        expected = (S.FILLED, Decimal("0.05")) if end == "filled" else (S.CANCELED, Decimal("0.03"))
        assert (done.state, done.filled_quantity) == expected
        assert await plane.fill_ids("g-plane") == [f"gmo-{e['executionId']}" for e in fake.executions]


async def test_executions_missing_for_a_minute_stop_the_polling_with_a_warning_and_reconciliation_books_them(
        caplog):
    fake, clock = FakeGmo(KEY, SECRET, lag_executions=True), MovedClock()
    caplog.set_level(logging.WARNING)
    async with running(fake, clock=clock) as broker, order_plane(broker) as plane:
        placed, _ = await plane.engine.submit(limit_intent("g-stuck", "BTC_JPY", "0.05", "9000000"))
        fake.execute(int(placed.broker_order_id), "0.05")
        assert await plane.follow(broker) == []
        clock.ahead = timedelta(seconds=59)
        assert await plane.follow(broker) == [] and "g-stuck" not in caplog.text
        clock.ahead = timedelta(seconds=61)
        assert await plane.follow(broker) == []
        [warning] = [r for r in caplog.records if getattr(r, "client_order_id", "") == "g-stuck"]
        assert warning.levelno == logging.WARNING and warning.filled_at_venue == "0.05"
        reads = fake.requests.count("GET /private/v1/orders")
        assert await plane.follow(broker) == [] and fake.requests.count("GET /private/v1/orders") == reads
        assert (await plane.order("g-stuck")).state == S.NEW  # still open for reconciliation
        fake.list_executions()
        await plane.engine.venue.reconcile_orders()
        done = await plane.order("g-stuck")
        assert (done.state, done.filled_quantity) == (S.FILLED, Decimal("0.05"))
