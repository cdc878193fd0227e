"""Quotes for the paper venue: MarketData.StreamTicks, all instruments, resumed on reconnect."""

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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="paper-quotes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            while True:
                request = market_data_pb2.StreamTicksRequest()
                if self.last_seq is not None:
                    request.resume_after_seq = self.last_seq
                try:
                    async for reply in stub.StreamTicks(request):
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
                await asyncio.sleep(backoff)
                backoff = min(self._max_backoff, backoff * 2)
