"""The live ccxt and GMO feeds carry trades as trade prints: the quoted book, the traded size as
volume, the taker's side; a trade passed on once; a trade older than the newest tick is not lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timezone
from decimal import Decimal

from services.common.config import Env
from services.common.venues import GmoSettings
from services.market_data.feeds.ccxt_feed import CcxtFeed
from services.market_data.feeds.gmo import GmoFeed

UTC = timezone.utc
T0 = 1_767_571_200_000  # 2026-01-05 00:00 UTC, in ms as ccxt gives times


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def trade(trade_id, ms, price, amount, side="buy") -> dict:
    return {"id": trade_id, "timestamp": ms, "price": price, "amount": amount, "side": side}


class StreamingExchange:
    """ccxt.pro's shape: watch_ticker / watch_trades answer with what the test hands over."""

    id = "fakex"
    has = {"watchTicker": True, "watchTrades": True}

    def __init__(self) -> None:
        self.tickers: asyncio.Queue = asyncio.Queue()
        self.trades: asyncio.Queue = asyncio.Queue()

    async def watch_ticker(self, symbol):
        return await self.tickers.get()

    async def watch_trades(self, symbol):
        return await self.trades.get()


class PollingExchange:
    """ccxt's REST shape: fetch_ticker / fetch_trades(since), answering from scripted replies."""

    id = "pollx"
    has = {"watchTicker": False, "watchTrades": False}

    def __init__(self, replies: list) -> None:
        self.replies = replies
        self.since: list = []
        self.ticker_calls = 0

    async def fetch_ticker(self, symbol):
        self.ticker_calls += 1
        await asyncio.Event().wait()  # quotes are not what this test is about

    async def fetch_trades(self, symbol, since=None):
        self.since.append(since)
        if not self.replies:
            await asyncio.Event().wait()
        return self.replies.pop(0)


async def test_ccxt_trades_carry_the_book_the_size_and_the_taker_side_once_each():
    exchange = StreamingExchange()
    feed = CcxtFeed(exchange, ("BTC_JPY",), trades=True)
    ticks = feed.ticks()
    # A trade before any quote: no book is known, so bid = ask = the trade price.
    await exchange.trades.put([trade(1, T0 + 1000, 15_000_000.0, 0.5, "buy")])
    first = await anext(ticks)
    assert (first.time, first.bid, first.ask, first.volume, first.aggressor) == (
        at(T0 + 1000), Decimal("15000000.0"), Decimal("15000000.0"), Decimal("0.5"), "buy")
    await exchange.tickers.put({"bid": 14_999_000.0, "ask": 15_001_000.0, "timestamp": T0 + 2000})
    quote = await anext(ticks)
    assert (quote.bid, quote.ask, quote.volume, quote.aggressor) == (Decimal("14999000.0"), Decimal("15001000.0"),
                                                                     0, None)
    # A resent trade is dropped; a trade stamped before the quote lands at the quote's time, with its book.
    await exchange.trades.put([trade(1, T0 + 1000, 15_000_000.0, 0.5, "buy"),
                               {"id": 2, "timestamp": T0 + 1500, "price": None, "amount": 1.0},
                               trade(3, T0 + 1500, 15_000_900.0, 0.25, "sell")])
    late = await anext(ticks)
    assert (late.time, late.bid, late.ask, late.volume, late.aggressor) == (
        at(T0 + 2000), Decimal("14999000.0"), Decimal("15001000.0"), Decimal("0.25"), "sell")
    assert feed.stats.malformed == 1 and feed.stats.first_skips[0][1].endswith("lacks a price, amount or time")
    await ticks.aclose()


async def test_polling_ccxt_trades_ask_from_the_last_trade_seen_and_drop_the_overlap():
    exchange = PollingExchange([[trade("a", T0, 100.0, 1.0), trade("b", T0 + 10, 101.0, 2.0)],
                                [trade("b", T0 + 10, 101.0, 2.0), trade("c", T0 + 20, 102.0, 3.0)]])
    feed = CcxtFeed(exchange, ("BTC_USDT",), poll_seconds=0, trades=True)
    ticks = feed.ticks()
    got = [await anext(ticks) for _ in range(3)]
    await ticks.aclose()
    assert [(t.bid, t.volume) for t in got] == [(Decimal("100.0"), Decimal("1.0")), (Decimal("101.0"), Decimal("2.0")),
                                                (Decimal("102.0"), Decimal("3.0"))]
    assert exchange.since[:2] == [None, T0 + 10]


async def test_a_ccxt_feed_without_trades_asks_for_none():
    exchange = PollingExchange([[trade("a", T0, 100.0, 1.0)]])
    feed = CcxtFeed(exchange, ("BTC_USDT",), poll_seconds=0)
    ticks = feed.ticks()
    pending = asyncio.ensure_future(anext(ticks))
    while exchange.ticker_calls == 0:
        await asyncio.sleep(0)
    pending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pending  # the generator ends with it, stopping its followers
    assert exchange.since == []


def gmo(**message) -> str:
    return json.dumps({"symbol": "BTC_JPY", **message})


def test_gmo_subscribes_to_taker_trades_after_the_tickers_and_reads_them_as_trade_prints():
    feed = GmoFeed(GmoSettings.from_env(Env({}), trading=False), ("BTC_JPY", "ETH_JPY"), trades=True)
    assert feed.subscriptions() == [
        {"command": "subscribe", "channel": "ticker", "symbol": "BTC_JPY"},
        {"command": "subscribe", "channel": "ticker", "symbol": "ETH_JPY"},
        {"command": "subscribe", "channel": "trades", "symbol": "BTC_JPY", "option": "TAKER_ONLY"},
        {"command": "subscribe", "channel": "trades", "symbol": "ETH_JPY", "option": "TAKER_ONLY"}]
    quote = feed._parse(gmo(channel="ticker", bid="15000000", ask="15001000", timestamp="2026-01-05T00:00:02.000Z"))
    sold = feed._parse(gmo(channel="trades", price="15000000", side="SELL", size="0.02",
                           timestamp="2026-01-05T00:00:03.000Z"))
    early = feed._parse(gmo(channel="trades", price="15001000", side="BUY", size="0.5",
                            timestamp="2026-01-05T00:00:01.000Z"))
    bad = feed._parse(gmo(channel="trades", price="NaN", side="BUY", size="1", timestamp="2026-01-05T00:00:04Z"))
    assert (quote.volume, quote.aggressor) == (0, None)
    assert (sold.bid, sold.ask, sold.volume, sold.aggressor, sold.time) == (
        Decimal("15000000"), Decimal("15001000"), Decimal("0.02"), "sell", datetime(2026, 1, 5, 0, 0, 3, tzinfo=UTC))
    assert (early.volume, early.aggressor, early.time) == (Decimal("0.5"), "buy", sold.time)  # not lost as late
    assert bad is None and feed.stats.malformed == 1


def test_a_gmo_feed_without_trades_subscribes_to_tickers_only_and_ignores_trade_messages():
    feed = GmoFeed(GmoSettings.from_env(Env({}), trading=False), ("BTC_JPY",))
    assert [c["channel"] for c in feed.subscriptions()] == ["ticker"]
    assert feed._parse(gmo(channel="trades", price="1", side="BUY", size="1", timestamp="2026-01-05T00:00:01Z")) is None
