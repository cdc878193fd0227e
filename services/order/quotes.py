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
from services.common.timeutil import from_timestamp

log = logging.getLogger(__name__)

STARTING_BACKOFF_SECONDS = 0.25
OnQuote = Callable[[str, datetime, Decimal, Decimal], Awaitable[None]]


class MarketDataQuotes:
    """Feeds every tick to `on_quote`; after a broken stream it resumes after the last seq it saw."""

    def __init__(self, address: str, on_quote: OnQuote, *, token: str | None = None,
                 max_backoff_seconds: float = 2.0) -> None:
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
        self._task = asyncio.create_task(self._run(), name="paper-quotes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff, opened_once = 0.1, False
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            while True:
                request = market_data_pb2.StreamTicksRequest()
                if self.last_seq is not None:
                    request.resume_after_seq = self.last_seq
                call = stub.StreamTicks(request)
                try:
                    await call.initial_metadata()
                    if not call.done():  # a refused or failed call also ends its wait for metadata
                        self._open.set()
                        opened_once = True
                        backoff = 0.1
                    async for reply in call:
                        tick = reply.tick
                        await self._on_quote(tick.instrument, from_timestamp(tick.time), Decimal(tick.bid),
                                             Decimal(tick.ask))
                        self.last_seq = reply.seq
                        self.quotes_seen += 1
                        backoff = 0.1
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                        # Past the server's retention (or a restarted server): continue live.
                        self.last_seq = None
                    log.info("tick stream broke; reconnecting",
                             extra={"code": exc.code().name, "resume_after_seq": self.last_seq})
                except Exception:  # a bad tick must not stop the venue's quotes for good
                    log.exception("tick stream failed; reconnecting")
                finally:
                    self._open.clear()
                    call.cancel()
                await asyncio.sleep(backoff)
                # Until the stream first opens, market_data is most likely still starting beside us:
                # ask again soon, so the plane's short wait at start is enough.
                backoff = min(self._max_backoff if opened_once else STARTING_BACKOFF_SECONDS, backoff * 2)
