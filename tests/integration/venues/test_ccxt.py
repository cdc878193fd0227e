"""The ccxt adapters with a real ccxt.async_support.binance whose REST urls point at a loopback Binance.

Each ccxt bug of issue 17 has a test here that fails on the old adapter: -1006 retried into a
second fill, a resend after a timeout and a failed lookup, silent truncation of the amount,
the partial fill of an expired order dropped, capabilities assumed (bitflyer live, NotSupported
retried). Issue 16's stop orders: a Binance spot STOP_LOSS rests, triggers on the last trade,
fills as a market order; one closing order per position rests on spot.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from services.common.config import ConfigError, Env
from services.common.venues import CcxtSettings, point_at
from services.market_data.feeds.ccxt_feed import CcxtFeed, make_exchange
from services.market_data.feeds.oanda import Backoff
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, OutcomeUnknown
from services.order.brokers.ccxt_broker import CcxtBroker
from services.order.states import OrderState as S
from tests.integration.venues.fakes.binance_server import FILL_PRICE, FakeBinance
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.roads import (MovedClock, gateway, limit_intent, order_plane,
                                           rides_out_a_429_storm)

KEY, SECRET = "binance-key-K3Y", "binance-secret-S3CR3T-xyz"


def exchange(url: str, *, secret: str = SECRET, timeout: float = 2.0):
    settings = CcxtSettings.from_env(Env({"CCXT_API_KEY": KEY, "CCXT_SECRET": secret, "QUANTMESH_VENUE_ENV": "live",
                                          "QUANTMESH_CCXT_REST_URL": url,
                                          "QUANTMESH_VENUE_TIMEOUT_SECONDS": str(timeout)}),
                                     "binance", trading=True)
    ex = make_exchange(settings, streaming=False)
    ex.options["fetchMarkets"] = {"types": ["spot"]}
    ex.options["fetchCurrencies"] = False
    ex.options["fetchMargins"] = False  # the fake serves spot only (no sapi margin pair lists)
    ex.enableRateLimit = False  # the gateway paces; ccxt's own throttle would only slow the test
    return ex, settings


@asynccontextmanager
async def running(fake: FakeBinance, clock=None, **options):
    async with serving(fake.app()) as url:
        ex, _ = exchange(url, **options)
        try:
            yield CcxtBroker(ex, ("BTC_USDT",), poll_seconds=0.05, clock=clock)
        finally:
            await ex.close()


def order(cid: str, kind: str = "market", price: str | None = None, qty: str = "0.01") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="BTC_USDT", side="buy",
                       quantity=Decimal(qty), order_type=kind, limit_price=Decimal(price) if price else None)


def posts(fake: FakeBinance) -> int:
    return fake.requests.count("POST /api/v3/order")


GROUP = "protect:acct:trend:BTC_USDT"


def closing(cid: str, kind: str = "stop", price: str = "64000.00", *, side: str = "sell", qty: str = "0.01",
            group: str = GROUP, tif: str = "GTC") -> BrokerOrder:
    """A reduce-only exit of a protected position, as the order plane sends protection and exits."""
    return BrokerOrder(client_order_id=cid, account="acct", instrument="BTC_USDT", side=side, quantity=Decimal(qty),
                       order_type=kind, stop_price=Decimal(price) if kind == "stop" else None,
                       limit_price=Decimal(price) if kind == "limit" else None, time_in_force=tif,
                       oco_group=group, role="exit", reduce_only=True)


async def test_market_order_through_real_ccxt_binance_fills_and_is_found_by_client_id():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        assert isinstance(broker.exchange, ccxt_async.binance)
        ack = await broker.submit(order("x-1"))
        assert fake.orders[0]["clientOrderId"] == "x-1"  # ccxt sent it as newClientOrderId
        assert ack.state == "filled" and ack.fills[0].price == Decimal(FILL_PRICE)
        assert ack.fills[0].quantity == Decimal("0.01")
        found = await broker.lookup("x-1")
        assert found is not None and found.broker_order_id == ack.broker_order_id
        assert [f.broker_fill_id for f in found.fills] == [f.broker_fill_id for f in ack.fills]
        assert await broker.lookup("nope") is None
        [position] = await broker.positions("acct")  # 0.5 held, 0.01 bought, 0.1% commission in BTC
        assert position.instrument == "BTC_USDT" and position.quantity == Decimal("0.50999")


async def test_execution_status_unknown_is_looked_up_never_resent():
    # Issue 17 bug 1: -1006 (ccxt OperationFailed) was retried with no lookup; Binance takes a
    # reused client id once the first order is filled, so that made a second fill.
    fake = FakeBinance(KEY, SECRET, fail_after_accept=[-1006])
    async with running(fake) as broker:
        ack = await gateway(broker).submit(order("x-1006"))
        assert ack.state == "filled" and posts(fake) == 1 and len(fake.fills) == 1
        fake.fail_after_accept, fake.lookup_failures = [-1006], 1
        with pytest.raises(OutcomeUnknown, match="not sent again"):
            await gateway(broker).submit(order("x-1006-b"))
        assert posts(fake) == 2 and len(fake.fills) == 2


async def test_timeout_and_a_failed_lookup_leave_the_outcome_unknown_and_exactly_one_fill():
    fake = FakeBinance(KEY, SECRET, reply_delay=1.0, lookup_failures=1)
    async with running(fake, timeout=0.3) as broker:
        with pytest.raises(OutcomeUnknown):
            await gateway(broker).submit(order("x-doubt"))
        assert posts(fake) == 1 and len(fake.fills) == 1
        found = await broker.lookup("x-doubt")
        assert found.state == "filled" and len(found.fills) == 1


async def test_timeout_after_acceptance_is_resolved_by_client_id_without_a_duplicate():
    fake = FakeBinance(KEY, SECRET, reply_delay=1.5)
    async with running(fake, timeout=0.3) as broker:
        ack = await gateway(broker).submit(order("x-timeout"))
        assert len(fake.orders) == 1 and ack.broker_order_id == str(fake.orders[0]["orderId"])
        assert ack.state == "filled"


async def test_amounts_and_prices_off_the_market_precision_are_refused_before_sending():
    # Issue 17 bug 8: ccxt truncated 0.012345 to 0.01234 and the order could never complete.
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        with pytest.raises(BrokerRejected, match="quantity 0.012345") as caught:
            await broker.submit(order("x-fine", qty="0.012345"))
        assert caught.value.rule == "venue.precision"
        with pytest.raises(BrokerRejected, match="price 60000.123"):
            await broker.submit(order("x-tick", kind="limit", price="60000.123"))
        assert posts(fake) == 0 and await broker.lookup("x-fine") is None


async def test_the_partial_fill_of_an_expired_order_is_booked_and_followed():
    # Issue 17 bug 6: GET /api/v3/order has no per-trade detail; the filled part was never booked.
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("x-part", kind="limit", price="60000", qty="0.01"))
        assert ack.state == "new" and await broker.poll() == []
        fake.fill("x-part", "0.004", price="60000.00")
        fake.expire("x-part")
        news = await broker.poll()
        assert [(n.state, n.fill.quantity if n.fill else None) for n in news] == [
            ("expired", Decimal("0.004")), ("expired", None)]
        found = await broker.lookup("x-part")
        assert found.state == "expired" and found.filled_quantity == Decimal("0.004")
        assert found.fills[0].broker_fill_id == news[0].fill.broker_fill_id
        assert await broker.poll() == []


async def test_limit_order_rests_and_cancels():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(order("x-lim", kind="limit", price="60000"))
        assert ack.state == "new" and not ack.fills
        canceled = await broker.cancel("x-lim")
        assert canceled.state == "canceled" and fake.orders[0]["status"] == "CANCELED"


async def test_429_storm_slows_down_then_succeeds_or_fails_clearly():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        await broker.exchange.load_markets()
        await rides_out_a_429_storm(broker, fake, order("x-429"), throttled=2)
        fake.throttle = 10
        with pytest.raises(BrokerOverloaded, match="ccxt binance"):
            await gateway(broker, attempts=2).submit(order("x-storm"))
        assert len(fake.orders) == 1


async def test_a_malformed_order_reply_is_adopted_by_lookup_never_resent():
    fake = FakeBinance(KEY, SECRET, malformed={"order"})
    async with running(fake) as broker:
        ack = await gateway(broker).submit(order("x-bad"))
        assert ack.broker_order_id == str(fake.orders[0]["orderId"]) and posts(fake) == 1


async def test_wrong_secret_is_refused_and_no_secret_reaches_logs_or_errors(caplog):
    fake = FakeBinance(KEY, SECRET)
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-binance-secret-QQQ"
    async with running(fake, secret=wrong) as broker:
        with pytest.raises(BrokerRejected) as caught:
            await broker.submit(order("x-auth"))
    assert fake.orders == []
    for text in (caplog.text, str(caught.value), repr(caught.value)):
        assert wrong not in text and SECRET not in text


def test_an_exchange_without_client_id_dedupe_is_refused_live_unless_declared_no_resend():
    # Issue 17 bug 9: bitflyer cannot find an order by client id, so a timeout led to a duplicate.
    live = {"CCXT_API_KEY": KEY, "CCXT_SECRET": SECRET, "QUANTMESH_VENUE_ENV": "live"}
    with pytest.raises(ConfigError, match="QUANTMESH_CCXT_NO_RESEND=1"):
        CcxtSettings.from_env(Env(live), "bitflyer", trading=True)
    declared = CcxtSettings.from_env(Env({**live, "QUANTMESH_CCXT_NO_RESEND": "1"}), "bitflyer", trading=True)
    assert declared.no_resend and not declared.has_client_ids
    assert CcxtSettings.from_env(Env(live), "binance", trading=True).has_client_ids
    assert CcxtSettings.from_env(Env({}), "bitflyer", trading=False).exchange_id == "bitflyer"  # feeds only


async def test_a_stop_rests_until_the_last_trade_reaches_it_then_fills_once_as_a_market_order():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(closing("x-sl", price="64000.00"))
        [sent] = fake.orders
        assert (sent["type"], sent["side"], Decimal(sent["stopPrice"])) == ("STOP_LOSS", "SELL", Decimal("64000"))
        assert ack.state == "new" and not ack.fills and ack.broker_order_id == str(sent["orderId"])
        fake.trade_at("64000.01")  # above the stop: nothing happens
        assert await broker.poll() == [] and sent["status"] == "NEW" and fake.trades == []
        fake.trade_at("63990.00")  # through it: executed as a market order
        news = await broker.poll()
        [trade] = fake.trades
        assert [(n.state, n.fill.quantity, n.fill.price, n.fill.broker_fill_id) for n in news] == [
            ("filled", Decimal("0.01"), Decimal("63990.00"), f"ccxt:binance-{trade['id']}")]
        assert await broker.poll() == []  # booked once
        found = await broker.lookup("x-sl")
        assert found.state == "filled" and [f.broker_fill_id for f in found.fills] == [news[0].fill.broker_fill_id]
        assert posts(fake) == 1


async def test_a_buy_stop_triggers_when_the_last_trade_reaches_it_from_below():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        ack = await broker.submit(closing("x-bsl", price="66000.00", side="buy", group=""))
        assert ack.state == "new"
        fake.trade_at("65999.99")
        assert await broker.poll() == []
        fake.trade_at("66000.00")
        [news] = await broker.poll()
        assert news.state == "filled" and news.fill.price == Decimal("66000.00")


async def test_stops_off_the_tick_or_where_the_venue_has_none_are_refused_before_sending():
    fake = FakeBinance(KEY, SECRET, order_types=("LIMIT", "MARKET"))
    async with running(fake) as broker:
        with pytest.raises(BrokerRejected, match="stop price 64000.005") as caught:
            await broker.submit(closing("x-tick", price="64000.005"))
        assert caught.value.rule == "venue.precision"
        with pytest.raises(BrokerRejected, match="lists no stop-market order .STOP_LOSS. for BTC/USDT") as caught:
            await broker.submit(closing("x-unlisted"))  # this symbol's exchangeInfo has no STOP_LOSS
        assert caught.value.rule == "venue.order_type"
        with pytest.raises(BrokerRejected, match="market, limit and stop orders only") as caught:
            await broker.submit(order("x-trail", kind="trailing_stop"))
        assert caught.value.rule == "venue.order_type"
        assert posts(fake) == 0
    async with serving(fake.app()) as url:  # ccxt declares no stop orders for bitflyer
        flyer = ccxt_async.bitflyer({"apiKey": KEY, "secret": SECRET})
        point_at(flyer, url)
        try:
            with pytest.raises(BrokerRejected, match="no stop orders for bitflyer") as caught:
                await CcxtBroker(flyer, ("BTC_JPY",), client_ids=False).submit(closing("x-flyer"))
        finally:
            await flyer.close()
    assert caught.value.rule == "venue.order_type" and fake.requests == []


async def test_binance_refuses_stops_as_documented():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        with pytest.raises(BrokerRejected, match="Order would trigger immediately"):
            await broker.submit(closing("x-above", price="65000.05"))  # a sell stop at the last price
        raw = broker.exchange
        await raw.load_markets()
        base = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS", "quantity": "0.01"}
        with pytest.raises(ccxt.BadRequest, match="-1102"):
            await raw.private_post_order(base)  # no stopPrice
        with pytest.raises(ccxt.BaseError, match="PRICE_FILTER"):
            await raw.private_post_order({**base, "stopPrice": "64000.001"})
        with pytest.raises(ccxt.BadRequest, match="-1106"):
            await raw.private_post_order({**base, "stopPrice": "64000", "price": "63900"})
        assert fake.orders == []


async def test_a_resting_stop_cancels_and_no_longer_triggers():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(closing("x-sl-cancel"))
        canceled = await broker.cancel("x-sl-cancel")
        assert canceled.state == "canceled" and fake.orders[0]["status"] == "CANCELED"
        assert fake.trade_at("63000.00") == [] and await broker.poll() == []


async def test_a_stop_in_doubt_after_acceptance_is_adopted_never_sent_twice():
    fake = FakeBinance(KEY, SECRET, fail_after_accept=[-1006])
    async with running(fake) as broker:
        ack = await gateway(broker).submit(closing("x-sl-1006"))
        assert ack.state == "new" and ack.broker_order_id == str(fake.orders[0]["orderId"]) and posts(fake) == 1
        fake.trade_at("63000.00")
        [news] = await broker.poll()
        assert news.state == "filled" and len(fake.trades) == 1 and posts(fake) == 1


async def test_on_spot_one_closing_order_rests_and_an_exit_takes_it_away_first():
    # Binance spot locks the coins of an open sell: the position's stop-loss and take-profit cannot
    # both rest (and with more coins held, both could fill). The take-profit is refused before
    # sending; a market exit cancels the stop first, then closes the position once.
    fake = FakeBinance(KEY, SECRET, balances={"BTC": Decimal("0.01"), "USDT": Decimal("100000")})
    async with running(fake) as broker:
        assert (await broker.submit(closing("x-sl"))).state == "new"
        with pytest.raises(ccxt.InsufficientFunds):  # what Binance itself would answer
            await broker.exchange.create_order("BTC/USDT", "limit", "sell", 0.01, 66000)
        with pytest.raises(BrokerRejected, match="'x-sl' already rests") as caught:
            await broker.submit(closing("x-tp", kind="limit", price="66000.00"))
        assert caught.value.rule == "venue.oco" and posts(fake) == 2
        exit_ack = await broker.submit(closing("x-exit", kind="market", tif="IOC"))
        assert exit_ack.state == "filled" and [o["status"] for o in fake.orders] == ["CANCELED", "FILLED"]
        assert fake.requests.index("DELETE /api/v3/order") < len(fake.requests) - 1
        news = await broker.poll()  # the engine hears of the stop it did not cancel itself
        assert [(n.client_order_id, n.state, n.fill) for n in news] == [("x-sl", "canceled", None)]
        assert fake.trade_at("63000.00") == [] and len(fake.trades) == 1
        fake.balances["BTC"] += Decimal("0.01")  # a new position: its stop rests again
        assert (await broker.submit(closing("x-sl-2", price="62000.00"))).state == "new"


async def test_a_stop_in_doubt_still_holds_its_place_and_the_exit_finds_it_to_cancel():
    fake = FakeBinance(KEY, SECRET, fail_after_accept=[-1006], lookup_failures=1)
    async with running(fake) as broker:
        with pytest.raises(OutcomeUnknown):
            await broker.submit(closing("x-sl"))
        with pytest.raises(BrokerRejected, match="'x-sl' already rests"):
            await broker.submit(closing("x-tp", kind="limit", price="66000.00"))
        assert (await broker.submit(closing("x-exit", kind="market", tif="IOC"))).state == "filled"
        assert [o["status"] for o in fake.orders] == ["CANCELED", "FILLED"] and posts(fake) == 2


async def test_an_exit_is_not_sent_when_the_stop_closed_the_position_first():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(closing("x-sl"))
        fake.trade_at("63000.00")  # the stop fills before we have polled it
        with pytest.raises(BrokerRejected, match="traded 0.01 before it could be canceled") as caught:
            await broker.submit(closing("x-late-exit", kind="market", tif="IOC"))
        assert caught.value.rule == "venue.oco" and posts(fake) == 1 and len(fake.trades) == 1


class Refusing:
    """An exchange stub whose create_order raises what ccxt raises for an unsupported call."""

    id = "stub"
    has: dict = {}
    options: dict = {}

    def __init__(self, error):
        self.error, self.calls = error, 0

    async def load_markets(self):
        return {}

    def market(self, symbol):
        return {"limits": {}}

    def amount_to_precision(self, symbol, amount):
        return amount

    price_to_precision = amount_to_precision

    async def create_order(self, *args):
        self.calls += 1
        raise self.error

    async def fetch_order(self, order_id, symbol, params=None):
        raise ccxt.OrderNotFound("no such order")


@pytest.mark.parametrize("error", [ccxt.NotSupported("createOrder() is not supported"),
                                   ccxt.ArgumentsRequired("createOrder() requires a price")])
async def test_not_supported_and_arguments_required_are_final_not_retried(error):
    stub = Refusing(error)
    with pytest.raises(BrokerRejected, match=type(error).__name__) as caught:
        await gateway(CcxtBroker(stub, ("BTC_USDT",))).submit(order("x-ns"))
    assert stub.calls == 1 and caught.value.rule == "venue.not_supported"


async def test_without_client_ids_an_order_never_answered_is_unknown_not_absent():
    stub = Refusing(ccxt.RequestTimeout("timed out"))
    broker = CcxtBroker(stub, ("BTC_USDT",), client_ids=False)
    with pytest.raises(OutcomeUnknown, match="an operator must check"):
        await gateway(broker).submit(order("x-blind"))
    with pytest.raises(OutcomeUnknown):
        await broker.lookup("x-blind")
    assert stub.calls == 1


async def test_polling_feed_survives_venue_errors_and_keeps_delivering():
    fake = FakeBinance(KEY, SECRET, fail_ticker=2)
    async with serving(fake.app()) as url:
        ex, _ = exchange(url)
        feed = CcxtFeed(ex, ("BTC_USDT",), poll_seconds=0.05, backoff=Backoff(initial=0.05, maximum=0.1))
        assert not feed.streaming
        ticks = []

        async def take():
            async for tick in feed.ticks():
                ticks.append(tick)
                if len(ticks) == 3:
                    return
        try:
            await asyncio.wait_for(take(), timeout=20)
        finally:
            await ex.close()
    assert feed.backoff.reconnects == 2 and fake.ticker_calls >= 5
    assert all(t.instrument == "BTC_USDT" and t.ask > t.bid for t in ticks)


# ---- trades listed after the order's end -----------------------------------------------------
# An exchange's trade history (Binance GET /api/v3/myTrades, ccxt fetch_order_trades) can lag the
# order's status: FILLED or CANCELED with an executedQty above the trades listed so far. Finishing
# the order then would book the missing trades never (canceled is final) or only at reconciliation.


async def test_an_order_filled_before_its_last_trade_is_listed_is_followed_until_it_is():
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker:
        await broker.submit(order("x-lag", kind="limit", price="60000", qty="0.01"))
        fake.fill("x-lag", "0.004", price="60000.00")
        [first] = await broker.poll()
        assert (first.state, first.fill.quantity) == ("partially_filled", Decimal("0.004"))
        fake.lag_trades = True
        fake.fill("x-lag", "0.006", price="60000.00")
        assert fake.orders[0]["status"] == "FILLED" and len(fake.unlisted) == 1
        assert await broker.poll() == []  # FILLED at the exchange, but 0.006 of it not yet listed
        found = await broker.lookup("x-lag")
        assert (found.state, found.filled_quantity) == ("partially_filled", Decimal("0.004"))
        fake.list_trades()
        [second] = await broker.poll()  # still followed: the missing trade is booked
        assert (second.state, second.fill.quantity) == ("filled", Decimal("0.006"))
        assert second.fill.broker_fill_id == f"ccxt:binance-{fake.trades[1]['id']}"
        assert await broker.poll() == []
        found = await broker.lookup("x-lag")
        assert found.state == "filled" and [f.quantity for f in found.fills] == [Decimal("0.004"), Decimal("0.006")]


async def test_a_partly_filled_order_canceled_before_its_trade_is_listed_ends_canceled_with_that_fill():
    fake = FakeBinance(KEY, SECRET, lag_trades=True)
    async with running(fake) as broker:
        await broker.submit(order("x-lag-cxl", kind="limit", price="60000", qty="0.01"))
        fake.fill("x-lag-cxl", "0.004", price="60000.00")
        fake.cancel("x-lag-cxl")  # the exchange cancels the rest; its trade is not listed yet
        assert await broker.poll() == []  # neither a made-up fill for the 0.004 nor the end
        ack = await broker.cancel("x-lag-cxl")  # ended at the exchange: nothing is sent to cancel
        assert ack.state == "new" and "DELETE /api/v3/order" not in fake.requests
        fake.list_trades()
        news = await broker.poll()
        assert [(n.state, n.fill.quantity if n.fill else None) for n in news] == [
            ("canceled", Decimal("0.004")), ("canceled", None)]
        assert news[0].fill.broker_fill_id == f"ccxt:binance-{fake.trades[0]['id']}"  # the exchange's trade
        assert await broker.poll() == []


@pytest.mark.parametrize("end", ["filled", "canceled"])
async def test_the_order_plane_books_every_fill_of_an_order_ended_before_its_trades_are_listed(end):
    fake = FakeBinance(KEY, SECRET)
    async with running(fake) as broker, order_plane(broker) as plane:
        placed, _ = await plane.engine.submit(limit_intent("x-plane", "BTC_USDT", "0.01", "60000"))
        assert placed.state == S.NEW
        fake.fill("x-plane", "0.002", price="60000.00")
        fake.lag_trades = True
        fake.fill("x-plane", "0.008" if end == "filled" else "0.003", price="60000.00")
        if end == "canceled":
            fake.cancel("x-plane")
        await plane.follow(broker)
        waiting = await plane.order("x-plane")
        assert (waiting.state, waiting.filled_quantity) == (S.PARTIALLY_FILLED, Decimal("0.002"))  # kept open
        fake.list_trades()
        await plane.follow(broker)
        done = await plane.order("x-plane")
        expected = (S.FILLED, Decimal("0.01")) if end == "filled" else (S.CANCELED, Decimal("0.005"))
        assert (done.state, done.filled_quantity) == expected
        assert await plane.fill_ids("x-plane") == [f"ccxt:binance-{t['id']}" for t in fake.trades]


async def test_trades_missing_for_a_minute_stop_the_polling_with_a_warning_and_reconciliation_books_them(caplog):
    fake, clock = FakeBinance(KEY, SECRET, lag_trades=True), MovedClock()
    caplog.set_level(logging.WARNING)
    async with running(fake, clock=clock) as broker, order_plane(broker) as plane:
        await plane.engine.submit(limit_intent("x-stuck", "BTC_USDT", "0.01", "60000"))
        fake.fill("x-stuck", "0.01", price="60000.00")
        assert await plane.follow(broker) == []
        clock.ahead = timedelta(seconds=59)
        assert await plane.follow(broker) == [] and "x-stuck" not in caplog.text
        clock.ahead = timedelta(seconds=61)
        assert await plane.follow(broker) == []
        [warning] = [r for r in caplog.records if getattr(r, "client_order_id", "") == "x-stuck"]
        assert warning.levelno == logging.WARNING and warning.filled_at_venue == "0.01"
        reads = fake.requests.count("GET /api/v3/order")
        assert await plane.follow(broker) == [] and fake.requests.count("GET /api/v3/order") == reads
        assert await plane.engine.venue.reconcile_orders() == []  # asks, still nothing listed: stays open
        assert (await plane.order("x-stuck")).state == S.NEW
        reads = fake.requests.count("GET /api/v3/order")
        assert await plane.follow(broker) == [] and fake.requests.count("GET /api/v3/order") == reads  # not polled
        assert len([r for r in caplog.records if getattr(r, "client_order_id", "") == "x-stuck"]) == 1  # warned once
        fake.list_trades()
        await plane.engine.venue.reconcile_orders()
        done = await plane.order("x-stuck")
        assert (done.state, done.filled_quantity) == (S.FILLED, Decimal("0.01"))
        assert await plane.fill_ids("x-stuck") == [f"ccxt:binance-{fake.trades[0]['id']}"]
