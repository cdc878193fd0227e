"""GMO Coin's public WebSocket ticker (and trades) as a Feed.

Connects to wss://api.coin.z.com/ws/public/v1, sends
`{"command":"subscribe","channel":"ticker","symbol":"BTC_JPY"}` per instrument (GMO allows
one subscribe a second, hence the pause between them) and reads messages
`{"channel":"ticker","ask":..,"bid":..,"last":..,"volume":..,"symbol":..,"timestamp":..}`.
GMO's `volume` is the 24-hour volume, not a trade size, so ticker ticks carry volume 0.
With `trades`, it also subscribes
`{"command":"subscribe","channel":"trades","symbol":"BTC_JPY","option":"TAKER_ONLY"}` (the taker
side of each execution only, so a trade is counted once) and passes each
`{"channel":"trades","price":..,"side":"BUY"|"SELL","size":..,"timestamp":..,"symbol":..}`
on as a trade print: the latest quoted book, the size as volume, the taker's side (tape.py).
A closed, broken or silent socket (nothing for `stream_silence_seconds`) is opened again
with backoff; the pings GMO sends are answered by aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation

import aiohttp

from services.common.venues import GmoSettings, rfc3339_time
from services.market_data.feeds.base import FeedStats, FeedTick
from services.market_data.feeds.oanda import Backoff
from services.market_data.feeds.tape import VenueTape

log = logging.getLogger(__name__)


class GmoFeed:
    def __init__(self, settings: GmoSettings, instruments: tuple[str, ...], *, backoff: Backoff | None = None,
                 subscribe_pause: float = 1.0, trades: bool = False) -> None:
        self.name = "gmo"
        self.instruments = tuple(instruments)
        self.stats = FeedStats(feed="gmo", live=True)
        self.backoff = backoff or Backoff()
        self.trades = trades
        self.tape = VenueTape()
        self._settings = settings
        self._pause = subscribe_pause

    def subscriptions(self) -> list[dict]:
        """The subscribe commands, tickers first, then trades."""
        commands = [{"command": "subscribe", "channel": "ticker", "symbol": s} for s in self.instruments]
        if self.trades:
            commands += [{"command": "subscribe", "channel": "trades", "symbol": s, "option": "TAKER_ONLY"}
                         for s in self.instruments]
        return commands

    async def ticks(self) -> AsyncIterator[FeedTick]:
        silence = self._settings.stream_silence_seconds
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self._settings.ws_url, heartbeat=None, autoping=True,
                                                  timeout=aiohttp.ClientWSTimeout(ws_close=silence)) as ws:
                        for i, command in enumerate(self.subscriptions()):
                            if i:
                                await asyncio.sleep(self._pause)
                            await ws.send_str(json.dumps(command))
                        log.info("GMO ticker subscribed", extra={"instruments": ",".join(self.instruments)})
                        while True:
                            message = await ws.receive(timeout=silence)
                            if message.type != aiohttp.WSMsgType.TEXT:
                                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                    aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                                    break
                                continue
                            self.stats.rows_read += 1
                            self.backoff.reset()
                            tick = self._parse(message.data)
                            if tick is not None:
                                yield tick
                    log.warning("GMO ticker socket closed; reconnecting", extra={"venue": "GMO Coin"})
                except (asyncio.TimeoutError, TimeoutError):
                    log.warning("GMO ticker silent past the timeout; reconnecting",
                                extra={"venue": "GMO Coin", "silence_seconds": silence})
                except aiohttp.ClientError as exc:
                    log.warning("GMO ticker socket broke; reconnecting",
                                extra={"venue": "GMO Coin", "error": f"{type(exc).__name__}: {exc}"})
                await self.backoff.wait()

    def _parse(self, text: str) -> FeedTick | None:
        try:
            message = json.loads(text)
        except ValueError:
            self.stats.skip(self.stats.rows_read, "GMO Coin: a message is not JSON")
            return None
        channel = message.get("channel") if isinstance(message, dict) else None
        if channel == "trades" and self.trades:
            return self._trade(message)
        if channel != "ticker":
            if isinstance(message, dict) and "error" in message:  # e.g. {"error":"ERR-5003 Request too many."}
                log.warning("GMO ticker error message", extra={"venue": "GMO Coin", "error": str(message["error"])})
            return None
        try:
            bid, ask = Decimal(str(message["bid"])), Decimal(str(message["ask"]))
            tick = FeedTick(instrument=message["symbol"], time=rfc3339_time(message["timestamp"]), bid=bid, ask=ask)
        except (KeyError, TypeError, InvalidOperation, ValueError) as exc:
            self.stats.skip(self.stats.rows_read, f"GMO Coin: a ticker lacks a usable field ({exc!r})")
            return None
        if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask < bid:
            self.stats.skip(self.stats.rows_read, f"GMO Coin: ticker with bid {bid} ask {ask} is not a quote")
            return None
        return self.tape.quote(tick)

    def _trade(self, message: dict) -> FeedTick | None:
        try:
            price, size = Decimal(str(message["price"])), Decimal(str(message["size"]))
            moment, symbol = rfc3339_time(message["timestamp"]), message["symbol"]
        except (KeyError, TypeError, InvalidOperation, ValueError) as exc:
            self.stats.skip(self.stats.rows_read, f"GMO Coin: a trade lacks a usable field ({exc!r})")
            return None
        if not (price.is_finite() and size.is_finite()) or price <= 0 or size <= 0:
            self.stats.skip(self.stats.rows_read, f"GMO Coin: trade with price {price} size {size} is not a trade")
            return None
        side = {"BUY": "buy", "SELL": "sell"}.get(str(message.get("side", "")).upper())
        # No id to drop repeats by: GMO's socket pushes each execution once and never replays.
        return self.tape.trade(symbol, None, moment, price, size, side)
