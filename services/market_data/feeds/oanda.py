"""OANDA v20 pricing stream as a Feed.

`GET /v3/accounts/{accountID}/pricing/stream?instruments=USD_JPY,EUR_USD` on the stream host
answers a never-ending chunked body of JSON lines: `{"type":"PRICE",...}` quotes and a
`{"type":"HEARTBEAT",...}` every 5 s. A line that cannot be read is counted and skipped; a
stream that ends, breaks, or stays silent past `stream_silence_seconds` (no heartbeat either)
is opened again with exponential backoff, so the plane keeps getting quotes through a flaky
link. The backoff resets once a connection delivers something.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation

import aiohttp

from services.common.venues import OandaSettings, rfc3339_time
from services.market_data.feeds.base import FeedStats, FeedTick

log = logging.getLogger(__name__)


class Backoff:
    """Exponential reconnect delays, reset by a healthy connection."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial, self.maximum = initial, maximum
        self.next = initial
        self.reconnects = 0

    async def wait(self) -> None:
        self.reconnects += 1
        delay, self.next = self.next, min(self.maximum, self.next * 2)
        await asyncio.sleep(delay)

    def reset(self) -> None:
        self.next = self.initial


class OandaFeed:
    def __init__(self, settings: OandaSettings, instruments: tuple[str, ...], *,
                 backoff: Backoff | None = None) -> None:
        self.name = "oanda"
        self.instruments = tuple(instruments)
        self.stats = FeedStats(feed="oanda", live=True)
        self.heartbeats = 0
        self.backoff = backoff or Backoff()
        self._settings = settings

    async def ticks(self) -> AsyncIterator[FeedTick]:
        url = f"{self._settings.stream_url}/v3/accounts/{self._settings.account_id}/pricing/stream"
        headers = {"Authorization": f"Bearer {self._settings.token.reveal()}", "Accept-Datetime-Format": "RFC3339"}
        params = {"instruments": ",".join(self.instruments)}
        silence = self._settings.stream_silence_seconds
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(url, params=params, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=None, sock_connect=silence,
                                                                         sock_read=silence)) as response:
                        if response.status != 200:
                            log.warning("OANDA pricing stream refused", extra={
                                "venue": "OANDA", "status": response.status, "body": (await response.text())[:200]})
                        else:
                            log.info("OANDA pricing stream open", extra={"instruments": params["instruments"]})
                            async for tick in self._read(response):
                                yield tick
                            log.warning("OANDA pricing stream ended; reconnecting", extra={"venue": "OANDA"})
                except (asyncio.TimeoutError, TimeoutError):
                    log.warning("OANDA pricing stream silent past the timeout; reconnecting",
                                extra={"venue": "OANDA", "silence_seconds": silence})
                except aiohttp.ClientError as exc:
                    log.warning("OANDA pricing stream broke; reconnecting",
                                extra={"venue": "OANDA", "error": f"{type(exc).__name__}: {exc}"})
                await self.backoff.wait()

    async def _read(self, response: aiohttp.ClientResponse) -> AsyncIterator[FeedTick]:
        while True:
            line = await response.content.readline()  # sock_read bounds the silence between chunks
            if not line:
                return
            line = line.strip()
            if not line:
                continue
            self.stats.rows_read += 1
            self.backoff.reset()
            tick = self._parse(line)
            if tick is not None:
                yield tick

    def _parse(self, line: bytes) -> FeedTick | None:
        try:
            message = json.loads(line)
        except ValueError:
            self.stats.skip(self.stats.rows_read, "OANDA: a stream line is not JSON")
            return None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "HEARTBEAT":
            self.heartbeats += 1
            return None
        if kind != "PRICE":
            self.stats.skip(self.stats.rows_read, f"OANDA: unknown stream message type {kind!r}")
            return None
        try:
            if message.get("tradeable") is False:
                return None  # the market is closed: OANDA repeats the last quote, not a new one
            bid = Decimal(str(message["bids"][0]["price"]))
            ask = Decimal(str(message["asks"][0]["price"]))
            instrument, time = message["instrument"], rfc3339_time(message["time"])
        except (KeyError, IndexError, TypeError, InvalidOperation, ValueError) as exc:
            self.stats.skip(self.stats.rows_read, f"OANDA: a PRICE line lacks a usable field ({exc!r})")
            return None
        if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask < bid:
            self.stats.skip(self.stats.rows_read, f"OANDA: PRICE with bid {bid} ask {ask} is not a quote")
            return None
        return FeedTick(instrument=instrument, time=time, bid=bid, ask=ask)
