"""GMO Coin broker and ticker feed against a loopback GMO Coin that checks every signature."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.venues import GmoSettings
from services.market_data.feeds.gmo import GmoFeed
from services.market_data.feeds.oanda import Backoff
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, RetryableBrokerError
from services.order.brokers.gateway import BrokerGateway
from services.order.brokers.gmo import GmoBroker
from tests.integration.venues.fakes.gmo_server import FILL_PRICE, FakeGmo
from tests.integration.venues.fakes.loopback import serving

KEY, SECRET = "gmo-key-abc123", "gmo-secret-zz9-plural-z-alpha"


def settings(url: str, *, secret: str = SECRET, timeout: float = 2.0, silence: float = 5.0) -> GmoSettings:
    return GmoSettings.from_env(Env({"GMO_API_KEY": KEY, "GMO_API_SECRET": secret, "QUANTMESH_GMO_REST_URL": url,
                                     "QUANTMESH_GMO_WS_URL": url.replace("http", "ws") + "/ws/public/v1",
                                     "QUANTMESH_VENUE_TIMEOUT_SECONDS": str(timeout),
                                     "QUANTMESH_VENUE_STREAM_SILENCE_SECONDS": str(silence)}), trading=True)


def order(cid: str, kind: str = "market", side: str = "buy", qty: str = "0.01", price: str | None = None):
    return BrokerOrder(client_order_id=cid, account="acct", instrument="BTC_JPY", side=side, quantity=Decimal(qty),
                       order_type=kind, limit_price=Decimal(price) if price else None)


def gateway(broker, attempts: int = 5) -> BrokerGateway:
    return BrokerGateway(broker, WallClock(), rate_per_second=50.0, attempts=attempts, initial_backoff=0.01,
                         max_backoff=0.05)


async def test_market_order_fills_signed_and_lookup_and_positions_work():
    fake = FakeGmo(KEY, SECRET)
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url))
        try:
            ack = await broker.submit(order("g-1"))
            assert ack.state == "filled" and ack.fills[0].price == Decimal(FILL_PRICE)
            assert ack.fills[0].quantity == Decimal("0.01") and ack.broker_order_id == str(fake.orders[0]["orderId"])
            assert (await broker.lookup("g-1")).broker_order_id == ack.broker_order_id
            assert await broker.lookup("unknown") is None
            again = await broker.submit(order("g-1"))  # GMO is not idempotent; the adapter is
            assert len(fake.orders) == 1 and again.broker_order_id == ack.broker_order_id
            [position] = await broker.positions("acct")
            assert position.instrument == "BTC_JPY" and position.quantity == Decimal("0.02")
        finally:
            await broker.close()


async def test_limit_order_rests_and_cancels():
    fake = FakeGmo(KEY, SECRET)
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url))
        try:
            ack = await broker.submit(order("g-lim", kind="limit", price="9000000"))
            assert ack.state == "new" and fake.orders[0]["executionType"] == "LIMIT"
            canceled = await broker.cancel("g-lim")
            assert canceled.state == "canceled"
            with pytest.raises(BrokerRejected, match="ERR-5122"):
                await broker.cancel("g-lim")
        finally:
            await broker.close()


async def test_a_wrong_signature_gets_gmo_error_and_secrets_stay_out_of_logs_and_errors(caplog):
    fake = FakeGmo(KEY, SECRET)
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-secret-0xC0FFEE"
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url, secret=wrong))
        try:
            with pytest.raises(BrokerRejected, match="ERR-5010") as caught:
                await broker.submit(order("g-auth"))
        finally:
            await broker.close()
        config = settings(url)
    assert fake.orders == []
    for text in (caplog.text, str(caught.value), repr(caught.value), repr(config), str(config)):
        for secret in (wrong, SECRET, KEY):
            assert secret not in text


async def test_timeout_after_gmo_accepted_finds_the_order_and_never_posts_twice():
    fake = FakeGmo(KEY, SECRET, reply_delay=1.5)
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url, timeout=0.3))
        try:
            ack = await gateway(broker).submit(order("g-timeout"))
            assert len(fake.orders) == 1
            assert ack.broker_order_id == str(fake.orders[0]["orderId"]) and ack.state == "filled"
            assert [r for r in fake.requests if r.startswith("POST")] == ["POST /private/v1/order"]
        finally:
            await broker.close()


async def test_an_order_in_doubt_that_gmo_does_not_list_yet_is_never_reported_absent_nor_resent():
    fake = FakeGmo(KEY, SECRET, reply_delay=1.0, hide_from_lists=True)
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url, timeout=0.3))
        try:
            with pytest.raises(RetryableBrokerError, match="never posted twice"):
                await gateway(broker, attempts=3).submit(order("g-ghost", kind="limit", price="9000000"))
            assert [r for r in fake.requests if r.startswith("POST")] == ["POST /private/v1/order"]
            with pytest.raises(RetryableBrokerError):  # "don't know", never None ("no such order")
                await broker.lookup("g-ghost")
            fake.hide_from_lists = False
            found = await broker.lookup("g-ghost")
            assert found is not None and found.broker_order_id == str(fake.orders[0]["orderId"])
            assert len(fake.orders) == 1
        finally:
            await broker.close()


async def test_err_5003_storm_slows_down_then_succeeds_or_fails_clearly():
    fake = FakeGmo(KEY, SECRET, throttle=3)
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url))
        try:
            road = gateway(broker, attempts=6)
            ack = await road.submit(order("g-429"))
            assert ack.state == "filled" and len(fake.orders) == 1 and road.retries == 3
            assert road.limiter.rate < road.limiter.base_rate
            fake.throttle = 10
            with pytest.raises(BrokerOverloaded, match="GMO Coin.*ERR-5003"):
                await gateway(broker, attempts=2).submit(order("g-storm"))
            assert len(fake.orders) == 1
        finally:
            await broker.close()


@pytest.mark.parametrize("mode, names", [("json", "not JSON"), ("order_id", "orderId"),
                                         ("executions", "'price'")])
async def test_malformed_replies_name_gmo_and_the_field_and_record_no_fill(mode, names):
    fake = FakeGmo(KEY, SECRET, malformed={mode})
    async with serving(fake.app()) as url:
        broker = GmoBroker(settings(url))
        try:
            if mode == "executions":
                with pytest.raises(RetryableBrokerError, match=f"GMO Coin.*{names}"):
                    await broker.submit(order("g-bad"))
            else:
                # The reply is unreadable, so the adapter searches the venue and finds the one order it placed.
                ack = await broker.submit(order("g-bad"))
                assert ack.broker_order_id == str(fake.orders[0]["orderId"])
            assert len(fake.orders) == 1
        finally:
            await broker.close()


def test_gmo_trading_refuses_practice_without_a_test_server():
    with pytest.raises(ConfigError, match="no practice system"):
        GmoSettings.from_env(Env({"GMO_API_KEY": KEY, "GMO_API_SECRET": SECRET}), trading=True)
    with pytest.raises(ConfigError, match="GMO_API_KEY"):
        GmoSettings.from_env(Env({"QUANTMESH_VENUE_ENV": "live"}), trading=True)
    assert GmoSettings.from_env(Env({}), trading=False).ws_url == "wss://api.coin.z.com/ws/public/v1"


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
