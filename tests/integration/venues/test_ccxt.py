"""The ccxt adapters with a real ccxt.async_support.binance whose REST urls point at a loopback Binance.

Each ccxt bug of issue 17 has a test here that fails on the old adapter: -1006 retried into a
second fill, a resend after a timeout and a failed lookup, silent truncation of the amount,
the partial fill of an expired order dropped, capabilities assumed (bitflyer live, NotSupported
retried).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from decimal import Decimal

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from services.common.config import ConfigError, Env
from services.common.venues import CcxtSettings
from services.market_data.feeds.ccxt_feed import CcxtFeed, make_exchange
from services.market_data.feeds.oanda import Backoff
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, OutcomeUnknown
from services.order.brokers.ccxt_broker import CcxtBroker
from tests.integration.venues.fakes.binance_server import FILL_PRICE, FakeBinance
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.roads import gateway, rides_out_a_429_storm

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
async def running(fake: FakeBinance, **options):
    async with serving(fake.app()) as url:
        ex, _ = exchange(url, **options)
        try:
            yield CcxtBroker(ex, ("BTC_USDT",), poll_seconds=0.05)
        finally:
            await ex.close()


def order(cid: str, kind: str = "market", price: str | None = None, qty: str = "0.01") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="BTC_USDT", side="buy",
                       quantity=Decimal(qty), order_type=kind, limit_price=Decimal(price) if price else None)


def posts(fake: FakeBinance) -> int:
    return fake.requests.count("POST /api/v3/order")


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
        [position] = await broker.positions("acct")
        assert position.instrument == "BTC_USDT" and position.quantity == Decimal("0.5")


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
