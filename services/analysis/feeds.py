"""The analysis plane's followers: fills from the order plane, candles from market data.

Both follow forever (services/common/reconnect.py). The fill follower resumes after the
last fill seq the engine has stored (0 on a fresh schema: from the first fill), so a
reconnect or a restart neither skips nor counts a fill twice. The candle follower warms up
each instrument from GetCandles history, then follows StreamCandles from just after it.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

import grpc

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.analysis.engine import AnalysisEngine
from services.analysis.ranges import RangeCandle
from services.analysis.trades import FillRecord
from services.common.channels import open_channel
from services.common.reconnect import follow_forever
from services.common.timeutil import from_timestamp
from services.common.wire import SIDE_FROM_PROTO

log = logging.getLogger(__name__)

TIMEFRAME_VALUES = {"S5": 1, "M1": 2, "M5": 3, "H1": 4, "H4": 5, "D1": 6}
#: GetCandles answers at most this many candles per call.
HISTORY_LIMIT = 5000


class MalformedFill(ValueError):
    """A fill analysis cannot read; the follower stops there rather than skip it."""


def fill_record(seq: int, fill: order_pb2.Fill) -> FillRecord:
    side = SIDE_FROM_PROTO.get(fill.side)
    try:
        if side is None:
            raise ValueError("its side is unset")
        return FillRecord(seq=seq, fill_id=fill.fill_id, client_order_id=fill.client_order_id,
                          strategy=fill.strategy_slug, account=fill.account, instrument=fill.instrument,
                          side=str(side), quantity=Decimal(fill.quantity), price=Decimal(fill.price),
                          commission=Decimal(fill.commission or "0"), time=from_timestamp(fill.time))
    except (InvalidOperation, ValueError) as exc:
        raise MalformedFill(f"fill {fill.fill_id!r} (seq {seq}) cannot be read: {exc}") from None


def range_candle(candle: market_data_pb2.Candle) -> RangeCandle:
    return RangeCandle(instrument=candle.instrument, start=from_timestamp(candle.start_time),
                       end=from_timestamp(candle.end_time), high=candle.mid.high, low=candle.mid.low,
                       close=candle.mid.close, spread=candle.ask.close - candle.bid.close)


class FillFollower:
    """Follows Order.WatchFills into the engine."""

    def __init__(self, engine: AnalysisEngine, address: str, *, token: str | None = None) -> None:
        self._engine = engine
        self._address = address
        self._token = token

    async def run(self) -> None:
        await follow_forever(self._session, what="order fills", address=self._address, log=log, max_backoff=5.0)

    async def _session(self) -> bool:
        delivered = False
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            after = self._engine.last_fill_seq
            log.info("following fills", extra={"address": self._address, "resume_after_seq": after})
            call = order_pb2_grpc.OrderStub(channel).WatchFills(order_pb2.WatchFillsRequest(resume_after_seq=after))
            try:
                async for event in call:
                    await self._engine.apply_fills([fill_record(event.seq, event.fill)])
                    delivered = True
            except grpc.aio.AioRpcError:
                if not delivered:
                    raise
                log.warning("fill stream broke; resuming", extra={"after_seq": self._engine.last_fill_seq})
        return delivered


class CandleFollower:
    """Follows MarketData.StreamCandles of one timeframe, every instrument, into the engine."""

    def __init__(self, engine: AnalysisEngine, address: str, *, timeframe: str, history: int,
                 token: str | None = None) -> None:
        self._engine = engine
        self._address = address
        self._timeframe = TIMEFRAME_VALUES[timeframe]
        self._history = min(history, HISTORY_LIMIT)
        self._token = token
        self._after: int | None = None

    async def run(self) -> None:
        await follow_forever(self._session, what="market data candles", address=self._address, log=log,
                             max_backoff=5.0)

    async def _session(self) -> bool:
        delivered = False
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            if self._after is None:
                self._after = await self._warm_up(stub)
                delivered = True
            request = market_data_pb2.StreamCandlesRequest(timeframes=[self._timeframe],
                                                           resume_after_seq=self._after)
            try:
                async for event in stub.StreamCandles(request):
                    await self._engine.apply_candles([range_candle(event.candle)])
                    self._after = event.seq
                    delivered = True
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    log.warning("candles cannot resume after seq %s (%s); warming up again", self._after,
                                exc.details())
                    self._after = None
                    return True
                if not delivered:
                    raise
        return delivered

    async def _warm_up(self, stub: market_data_pb2_grpc.MarketDataStub) -> int:
        """Loads each instrument's recent candles; returns the candle seq to resume the stream after."""
        instruments = await stub.ListInstruments(market_data_pb2.ListInstrumentsRequest(), timeout=10)
        tails = []
        for instrument in instruments.instruments:
            reply = await stub.GetCandles(market_data_pb2.GetCandlesRequest(
                instrument=instrument.symbol, timeframe=self._timeframe, limit=self._history, latest=True), timeout=30)
            await self._engine.apply_candles([range_candle(c) for c in reply.candles])
            if reply.seqs:
                tails.append(max(reply.seqs))
        # The smallest tail: a candle closed between two history calls is replayed, and the
        # trackers drop what they hold already.
        return min(tails) if tails else 0
