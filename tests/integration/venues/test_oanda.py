"""OANDA v20 broker and pricing feed against a loopback OANDA that speaks the v20 wire format."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from services.common.clock import WallClock
from services.common.config import Env
from services.common.venues import OandaSettings
from services.market_data.feeds.oanda import Backoff, OandaFeed
from services.order.brokers.base import BrokerOrder, BrokerOverloaded, BrokerRejected, RetryableBrokerError
from services.order.brokers.gateway import BrokerGateway
from services.order.brokers.oanda import OandaBroker
from tests.integration.venues.fakes.loopback import serving
from tests.integration.venues.fakes.oanda_server import FILL_PRICE, FakeOanda

TOKEN = "oanda-token-s3cr3t-7f9a"
ACCOUNT = "101-001-1234567-001"


def settings(url: str, *, token: str = TOKEN, timeout: float = 2.0, silence: float = 5.0) -> OandaSettings:
    return OandaSettings.from_env(Env({"OANDA_API_TOKEN": token, "OANDA_ACCOUNT_ID": ACCOUNT,
                                       "QUANTMESH_OANDA_REST_URL": url, "QUANTMESH_OANDA_STREAM_URL": url,
                                       "QUANTMESH_VENUE_TIMEOUT_SECONDS": str(timeout),
                                       "QUANTMESH_VENUE_STREAM_SILENCE_SECONDS": str(silence)}))


def market(cid: str, side: str = "buy", qty: str = "10000") -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, account="acct", instrument="USD_JPY", side=side,
                       quantity=Decimal(qty), order_type="market")


def gateway(broker, attempts: int = 5) -> BrokerGateway:
    return BrokerGateway(broker, WallClock(), rate_per_second=50.0, attempts=attempts, initial_backoff=0.01,
                         max_backoff=0.05)


async def test_market_order_fills_and_is_found_by_client_id_and_in_positions():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            ack = await broker.submit(market("c-1", side="sell"))
            assert ack.state == "filled" and ack.filled_quantity == Decimal("10000")
            assert ack.fills[0].price == Decimal(FILL_PRICE) and ack.fills[0].broker_fill_id.startswith("oanda-")
            assert fake.orders[0]["units"] == "-10000" and fake.orders[0]["timeInForce"] == "FOK"
            found = await broker.lookup("c-1")
            assert found is not None and found.broker_order_id == ack.broker_order_id
            assert found.fills[0].broker_fill_id == ack.fills[0].broker_fill_id  # the engine dedups on it
            assert await broker.lookup("never-sent") is None
            [position] = await broker.positions("acct")
            assert position.instrument == "USD_JPY" and position.quantity == Decimal("-10000")
        finally:
            await broker.close()


async def test_limit_order_rests_and_cancels_by_client_id():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            order = BrokerOrder(client_order_id="lim-1", account="acct", instrument="USD_JPY", side="buy",
                                quantity=Decimal("1000"), order_type="limit", limit_price=Decimal("149.500"))
            ack = await broker.submit(order)
            assert ack.state == "new" and not ack.fills
            assert fake.orders[0]["type"] == "LIMIT"
            canceled = await broker.cancel("lim-1")
            assert canceled.state == "canceled" and fake.orders[0]["state"] == "CANCELLED"
            with pytest.raises(BrokerRejected, match="no open order"):
                await broker.cancel("lim-1")
        finally:
            await broker.close()


async def test_timeout_after_the_venue_accepted_gives_the_accepted_order_and_no_duplicate():
    fake = FakeOanda(TOKEN, ACCOUNT, reply_delay=1.5)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url, timeout=0.3))
        try:
            ack = await gateway(broker).submit(market("c-timeout"))
            assert len(fake.orders) == 1, "a retry after the timeout created a second order"
            assert ack.broker_order_id == fake.orders[0]["id"] and ack.state == "filled"
            assert [r for r in fake.requests if r.startswith("POST")] == [f"POST /v3/accounts/{ACCOUNT}/orders"]
        finally:
            await broker.close()


async def test_a_resend_of_a_known_client_id_adopts_the_order_instead_of_trading_twice():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            first = await broker.submit(market("c-dup"))
            again = await broker.submit(market("c-dup"))
            assert len(fake.orders) == 1 and again.broker_order_id == first.broker_order_id
        finally:
            await broker.close()


async def test_a_storm_of_429s_slows_the_gateway_down_and_then_succeeds():
    fake = FakeOanda(TOKEN, ACCOUNT, throttle=3)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            road = gateway(broker, attempts=6)
            ack = await road.submit(market("c-429"))
            assert ack.state == "filled" and len(fake.orders) == 1
            assert road.retries == 3
            assert road.limiter.rate < road.limiter.base_rate  # slowed down, earning the rate back
        finally:
            await broker.close()


async def test_a_429_storm_longer_than_the_attempts_fails_with_a_clear_error():
    fake = FakeOanda(TOKEN, ACCOUNT, throttle=10)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            with pytest.raises(BrokerOverloaded, match="OANDA.*429"):
                await gateway(broker, attempts=3).submit(market("c-storm"))
            assert fake.orders == []
        finally:
            await broker.close()


@pytest.mark.parametrize("mode, names", [("json", "not JSON"), ("fill_price", "'price'")])
async def test_a_malformed_reply_is_a_clear_error_and_records_no_fill(mode, names):
    # The lookup after the unreadable reply is unreadable too, so there is nothing to adopt.
    fake = FakeOanda(TOKEN, ACCOUNT, malformed={mode, "lookup"})
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            with pytest.raises(RetryableBrokerError) as caught:
                await broker.submit(market("c-bad"))
        finally:
            await broker.close()
    message = str(caught.value)
    assert message.startswith("OANDA") and names in message and "'state'" in message
    assert len(fake.orders) == 1  # the venue has it; the engine keeps the order SUBMITTED, with no fill


async def test_malformed_lookup_names_the_missing_field():
    fake = FakeOanda(TOKEN, ACCOUNT)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url))
        try:
            await broker.submit(market("c-m"))
            fake.malformed = {"lookup"}
            with pytest.raises(RetryableBrokerError, match=r"OANDA.*'state'"):
                await broker.lookup("c-m")
        finally:
            await broker.close()


async def test_a_wrong_token_is_refused_and_the_token_never_reaches_logs_or_errors(caplog):
    fake = FakeOanda(TOKEN, ACCOUNT)
    wrong = "wrong-token-0xDEADBEEF"
    caplog.set_level(logging.DEBUG)
    async with serving(fake.app()) as url:
        broker = OandaBroker(settings(url, token=wrong))
        try:
            with pytest.raises(BrokerRejected, match="401") as caught:
                await broker.submit(market("c-auth"))
        finally:
            await broker.close()
        good = settings(url)
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
