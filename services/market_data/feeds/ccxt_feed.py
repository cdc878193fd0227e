"""Any ccxt exchange as a Feed: `watch_ticker` (ccxt.pro) where the exchange streams, else polling.

With `trades`, the feed also follows each instrument's trades (`watch_trades`, else
`fetch_trades` since the last one seen) and passes each on once as a trade print carrying
the latest quoted book, the traded amount as volume and the taker's side (see tape.py).
Instruments are quantmesh symbols (BTC_JPY); ccxt names them BTC/JPY. A failed call is logged
and retried with backoff; the exchange object comes from the caller (see `make_exchange`), so a
test can point one at a loopback server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from services.common.venues import CcxtSettings, make_ccxt_exchange
from services.market_data.feeds.base import FeedStats, FeedTick
from services.market_data.feeds.oanda import Backoff
from services.market_data.feeds.tape import VenueTape

log = logging.getLogger(__name__)


def make_exchange(settings: CcxtSettings, *, streaming: bool):
    """The exchange for a feed: ccxt.pro when streaming (see services.common.venues.make_ccxt_exchange)."""
    return make_ccxt_exchange(settings, streaming=streaming)


def ccxt_symbol(instrument: str) -> str:
    return instrument.replace("_", "/")


class CcxtFeed:
    def __init__(self, exchange, instruments: tuple[str, ...], *, poll_seconds: float = 2.0,
                 backoff: Backoff | None = None, trades: bool = False, trade_backoff: Backoff | None = None) -> None:
        self.exchange = exchange
        self.name = f"ccxt:{exchange.id}"
        self.instruments = tuple(instruments)
        self.stats = FeedStats(feed=self.name, live=True)
        self.backoff = backoff or Backoff()
        self.trade_backoff = trade_backoff or Backoff()  # its own: trade failures are not ticker reconnects
        self.streaming = bool(exchange.has.get("watchTicker")) and hasattr(exchange, "watch_ticker")
        self.trades = trades
        self.streaming_trades = bool(exchange.has.get("watchTrades")) and hasattr(exchange, "watch_trades")
        self.tape = VenueTape()
        self._poll = poll_seconds

    async def ticks(self) -> AsyncIterator[FeedTick]:
        queue: asyncio.Queue[FeedTick] = asyncio.Queue(maxsize=10_000)
        tasks = [asyncio.create_task(self._follow(instrument, queue)) for instrument in self.instruments]
        if self.trades:
            tasks += [asyncio.create_task(self._follow_trades(instrument, queue)) for instrument in self.instruments]
        try:
            while True:
                yield await queue.get()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _ask(self, what: str, instrument: str, call, backoff: Backoff):
        """One venue call; a failure is logged and waited out with `backoff`, and answers None."""
        try:
            answer = await call()
        except Exception as exc:  # ccxt raises its own tree (NetworkError, ExchangeError, ...)
            log.warning(f"ccxt {what} failed; trying again", extra={
                "feed": self.name, "instrument": instrument, "error": f"{type(exc).__name__}: {exc}"})
            await backoff.wait()
            return None
        backoff.reset()
        return answer

    async def _follow(self, instrument: str, queue: asyncio.Queue[FeedTick]) -> None:
        symbol, last_seen = ccxt_symbol(instrument), None
        ask = self.exchange.watch_ticker if self.streaming else self.exchange.fetch_ticker
        while True:
            ticker = await self._ask("ticker", instrument, lambda: ask(symbol), self.backoff)
            if ticker is None:
                continue
            self.stats.rows_read += 1
            tick = self._tick(instrument, ticker)
            if tick is not None and (tick.time, tick.bid, tick.ask) != last_seen:  # a poll repeats quiet quotes
                last_seen = (tick.time, tick.bid, tick.ask)
                await queue.put(self.tape.quote(tick))
            if not self.streaming:
                await asyncio.sleep(self._poll)

    async def _follow_trades(self, instrument: str, queue: asyncio.Queue[FeedTick]) -> None:
        symbol, since = ccxt_symbol(instrument), None

        def ask():
            if self.streaming_trades:
                return self.exchange.watch_trades(symbol)
            return self.exchange.fetch_trades(symbol, since=since)  # from the last trade seen; repeats are dropped
        while True:
            trades = await self._ask("trades", instrument, ask, self.trade_backoff)
            for trade in trades or ():
                self.stats.rows_read += 1
                tick = self._trade(instrument, trade)
                if tick is not None:
                    await queue.put(tick)
                if isinstance(trade.get("timestamp"), int):
                    since = max(since or 0, trade["timestamp"])
            if not self.streaming_trades:
                await asyncio.sleep(self._poll)

    def _trade(self, instrument: str, trade: dict) -> FeedTick | None:
        try:
            price, amount = Decimal(str(trade["price"])), Decimal(str(trade["amount"]))
            moment = datetime.fromtimestamp(trade["timestamp"] / 1000, timezone.utc)
        except (KeyError, TypeError, ValueError, InvalidOperation, OverflowError):
            self.stats.skip(self.stats.rows_read, f"{self.name}: a trade of {instrument} lacks a price, amount or time")
            return None
        if not (price.is_finite() and amount.is_finite()) or price <= 0 or amount <= 0:
            self.stats.skip(self.stats.rows_read, f"{self.name}: trade price {price} amount {amount} is not a trade")
            return None
        side = trade.get("side") if trade.get("side") in ("buy", "sell") else None
        key = trade.get("id") or (trade["timestamp"], str(price), str(amount), side)
        return self.tape.trade(instrument, key, moment, price, amount, side)

    def _tick(self, instrument: str, ticker: dict) -> FeedTick | None:
        try:
            bid, ask = Decimal(str(ticker["bid"])), Decimal(str(ticker["ask"]))
        except (KeyError, TypeError, InvalidOperation):
            self.stats.skip(self.stats.rows_read, f"{self.name}: ticker for {instrument} has no bid/ask")
            return None
        if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask < bid:
            self.stats.skip(self.stats.rows_read, f"{self.name}: ticker bid {bid} ask {ask} is not a quote")
            return None
        stamp = ticker.get("timestamp")
        moment = (datetime.fromtimestamp(stamp / 1000, timezone.utc) if isinstance(stamp, (int, float))
                  else datetime.now(timezone.utc))
        return FeedTick(instrument=instrument, time=moment, bid=bid, ask=ask)


def make_venue_feed(kind: str, exchange_id: str, instruments: tuple[str, ...], env=None):
    """The feed for QUANTMESH_FEED=oanda | gmo | ccxt:<exchange> (what plane.make_feed calls for a venue)."""
    from services.common.config import Env
    from services.common.venues import GmoSettings, OandaSettings
    from services.market_data.feeds.gmo import GmoFeed
    from services.market_data.feeds.oanda import OandaFeed

    env = env or Env()
    if kind == "oanda":
        return OandaFeed(OandaSettings.from_env(env), instruments)
    if kind == "gmo":
        return GmoFeed(GmoSettings.from_env(env, trading=False), instruments, trades=True)
    settings = CcxtSettings.from_env(env, exchange_id, trading=False)
    exchange = make_exchange(settings, streaming=True)
    return CcxtFeed(exchange, instruments, poll_seconds=settings.poll_seconds, trades=True)
