"""The ccxt adapters with a real ccxt.async_support.binance whose REST urls point at a loopback Binance."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import ccxt.async_support as ccxt_async
import pytest

from services.common.clock import WallClock
from services.common.config import Env
from services.common.venues import CcxtSettings
from services.market_data.feeds.ccxt_feed import CcxtFeed, make_exchange
from services.market_data.feeds.oanda import Backoff
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, RetryableBrokerError
from services.order.brokers.ccxt_broker import CcxtBroker
from services.order.brokers.gateway import BrokerGateway
from tests.integration.venues.fakes.binance_server import FILL_PRICE, FakeBinance
from tests.integration.venues.fakes.loopback import serving

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


def order(cid: str, kind: str = "market", price: str | None = None) -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="BTC_USDT", side="buy",
                       quantity=Decimal("0.01"), order_type=kind, limit_price=Decimal(price) if price else None)


def gateway(broker, attempts: int = 5) -> BrokerGateway:
    return BrokerGateway(broker, WallClock(), rate_per_second=50.0, attempts=attempts, initial_backoff=0.01,
                         max_backoff=0.05)


async def test_market_order_through_real_ccxt_binance_fills_and_is_found_by_client_id():
    fake = FakeBinance(KEY, SECRET)
    async with serving(fake.app()) as url:
        ex, _ = exchange(url)
        assert isinstance(ex, ccxt_async.binance)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            ack = await broker.submit(order("x-1"))
            assert fake.orders[0]["clientOrderId"] == "x-1"  # ccxt sent it as newClientOrderId
            assert ack.state == "filled" and ack.fills[0].price == Decimal(FILL_PRICE)
            assert ack.fills[0].quantity == Decimal("0.01")
            found = await broker.lookup("x-1")
            assert found is not None and found.broker_order_id == ack.broker_order_id
            assert await broker.lookup("nope") is None
            [position] = await broker.positions("acct")
            assert position.instrument == "BTC_USDT" and position.quantity == Decimal("0.5")
        finally:
            await ex.close()


async def test_limit_order_rests_and_cancels():
    fake = FakeBinance(KEY, SECRET)
    async with serving(fake.app()) as url:
        ex, _ = exchange(url)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            ack = await broker.submit(order("x-lim", kind="limit", price="60000"))
            assert ack.state == "new" and not ack.fills
            canceled = await broker.cancel("x-lim")
            assert canceled.state == "canceled" and fake.orders[0]["status"] == "CANCELED"
        finally:
            await ex.close()


async def test_timeout_after_acceptance_is_resolved_by_client_id_without_a_duplicate():
    fake = FakeBinance(KEY, SECRET, reply_delay=1.5)
    async with serving(fake.app()) as url:
        ex, _ = exchange(url, timeout=0.3)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            ack = await gateway(broker).submit(order("x-timeout"))
            assert len(fake.orders) == 1 and ack.broker_order_id == str(fake.orders[0]["orderId"])
            assert ack.state == "filled"
        finally:
            await ex.close()


async def test_429_storm_slows_down_then_succeeds_or_fails_clearly():
    fake = FakeBinance(KEY, SECRET, throttle=2)
    async with serving(fake.app()) as url:
        ex, _ = exchange(url)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            road = gateway(broker, attempts=5)
            ack = await road.submit(order("x-429"))
            assert ack.state == "filled" and len(fake.orders) == 1 and road.retries == 2
            assert road.limiter.rate < road.limiter.base_rate
            fake.throttle = 10
            with pytest.raises(BrokerOverloaded, match="ccxt binance"):
                await gateway(broker, attempts=2).submit(order("x-storm"))
            assert len(fake.orders) == 1
        finally:
            await ex.close()


async def test_malformed_order_reply_names_the_venue_and_field():
    fake = FakeBinance(KEY, SECRET, malformed={"order"})
    async with serving(fake.app()) as url:
        ex, _ = exchange(url)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            with pytest.raises(RetryableBrokerError, match=r"ccxt binance.*'id'"):
                await broker.submit(order("x-bad"))
        finally:
            await ex.close()


async def test_wrong_secret_is_refused_and_no_secret_reaches_logs_or_errors(caplog):
    fake = FakeBinance(KEY, SECRET)
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-binance-secret-QQQ"
    async with serving(fake.app()) as url:
        ex, settings = exchange(url, secret=wrong)
        broker = CcxtBroker(ex, ("BTC_USDT",))
        try:
            with pytest.raises(BrokerRejected) as caught:
                await broker.submit(order("x-auth"))
        finally:
            await ex.close()
    assert fake.orders == []
    for text in (caplog.text, str(caught.value), repr(caught.value), repr(settings)):
        assert wrong not in text and SECRET not in text


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
