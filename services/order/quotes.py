"""Quotes for the paper venue: MarketData.StreamTicks, all instruments, resumed on reconnect.

The stream counts as open once market_data has sent its initial metadata, which it does
after the subscription is in place: every tick published from then on reaches the venue.
The order plane waits (briefly) for that before it serves, so a mesh that says it is up
does not miss the first ticks pushed into it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

import grpc

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.channels import open_channel
from services.common.reconnect import follow_forever
from services.common.timeutil import from_timestamp

log = logging.getLogger(__name__)

OnQuote = Callable[[str, datetime, Decimal, Decimal], Awaitable[None]]


class MarketDataQuotes:
    """Feeds every tick to `on_quote`; after a broken stream it resumes after the last seq it saw.

    Reconnects go through services/common/reconnect.py like every follower. Its backoff is capped
    low (`max_backoff_seconds`): market_data is on the same network, usually starting beside this
    plane, and the plane's short wait at start must see the stream open soon after it is up."""

    def __init__(self, address: str, on_quote: OnQuote, *, token: str | None = None,
                 max_backoff_seconds: float = 0.25) -> None:
        self._address = address
        self._on_quote = on_quote
        self._token = token
        self._max_backoff = max_backoff_seconds
        self._task: asyncio.Task | None = None
        self.last_seq: int | None = None
        self.quotes_seen = 0
        self._open = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    async def wait_open(self, timeout: float) -> bool:
        """True once the tick stream is open; False when it did not open within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return False
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(
            follow_forever(self._session, what="market data ticks (paper venue quotes)", address=self._address,
                           log=log, max_backoff=self._max_backoff), name="paper-quotes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _session(self) -> bool:
        """One subscription; True when it opened (the backoff then starts small again)."""
        opened = False
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            request = market_data_pb2.StreamTicksRequest()
            if self.last_seq is not None:
                request.resume_after_seq = self.last_seq
            call = market_data_pb2_grpc.MarketDataStub(channel).StreamTicks(request)
            try:
                await call.initial_metadata()
                if not call.done():  # a refused or failed call also ends its wait for metadata
                    self._open.set()
                    opened = True
                async for reply in call:
                    tick = reply.tick
                    await self._on_quote(tick.instrument, from_timestamp(tick.time), Decimal(tick.bid),
                                         Decimal(tick.ask))
                    self.last_seq = reply.seq
                    self.quotes_seen += 1
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    # Past the server's retention (or a restarted server): continue live.
                    self.last_seq = None
                if not opened:
                    raise
                log.info("tick stream broke; reconnecting",
                         extra={"code": exc.code().name, "resume_after_seq": self.last_seq})
            finally:
                self._open.clear()
                call.cancel()
        return opened
