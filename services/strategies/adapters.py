"""The worker's ports over gRPC: market data, positions (a followed stream) and the order gateway.

The in-process backtest has its own adapters with the same methods; the worker
cannot tell them apart, which is what makes live and backtest trade alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.exposure import ExposureFollower
from services.common.vocabulary import OrderState
from services.common.wire import order_state_name
from services.strategies.book import TIMEFRAME_VALUES
from services.strategies.desk import IntentDraft, intent_message
from services.strategies.sdk import OpenPosition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    accepted: bool
    order_id: str
    state: str
    reason: str
    duplicate: bool = False


class GrpcMarket:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = market_data_pb2_grpc.MarketDataStub(channel)

    async def history(self, instrument: str, timeframe: str, count: int) -> list[tuple[int, market_data_pb2.Candle]]:
        reply = await self._stub.GetCandles(market_data_pb2.GetCandlesRequest(
            instrument=instrument, timeframe=TIMEFRAME_VALUES[timeframe], limit=min(count, 5000), latest=True))
        return list(zip(reply.seqs, reply.candles))

    def candles(self, instrument: str, timeframes: tuple[str, ...], after_seq: int | None) -> AsyncIterator:
        request = market_data_pb2.StreamCandlesRequest(
            instruments=[instrument], timeframes=[TIMEFRAME_VALUES[tf] for tf in timeframes])
        if after_seq is not None:
            request.resume_after_seq = after_seq
        return self._stub.StreamCandles(request)

    def factors(self, instrument: str, timeframes: tuple[str, ...], after_seq: int | None) -> AsyncIterator:
        request = market_data_pb2.StreamFactorsRequest(
            instruments=[instrument], timeframes=[TIMEFRAME_VALUES[tf] for tf in timeframes])
        if after_seq is not None:
            request.resume_after_seq = after_seq
        return self._stub.StreamFactors(request)


class PositionsUnavailable(Exception):
    """The worker's view of its positions cannot be trusted right now; it makes no decision."""


class StreamedPositions:
    """The worker's positions from the position plane's WatchExposure stream: read locally, no RPC per decision.

    The follower is filtered to this worker's strategy and instrument. When the view is
    stale (the position plane silent past its bound) a decision would act on positions
    that may have changed, so the worker skips it.
    """

    def __init__(self, follower: ExposureFollower) -> None:
        self.follower = follower

    @property
    def last_fill_seq(self) -> int:
        view = self.follower.latest
        return -1 if view is None else view.last_fill_seq

    def _view(self):
        stale = self.follower.stale_reason()
        if stale is not None:
            raise PositionsUnavailable(stale)
        return self.follower.latest

    async def open_positions(self, slug: str, instrument: str) -> list[OpenPosition]:
        return [OpenPosition(instrument=p.instrument, quantity=p.quantity, average_price=p.average_price,
                             opened_time=p.opened_time)
                for p in self._view().open_positions(slug, instrument) if p.quantity != 0]

    async def net_position(self, slug: str, instrument: str) -> Decimal:
        return self._view().strategy_position(slug, instrument)


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in (
        grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class GrpcOrders:
    """Order.Submit with retries: safe, because the client order id makes Submit idempotent."""

    def __init__(self, channel: grpc.aio.Channel, account: str = "") -> None:
        self._stub = order_pb2_grpc.OrderStub(channel)
        self._account = account

    async def submit(self, draft: IntentDraft, trace: common_pb2.TraceContext) -> SubmitOutcome:
        intent = intent_message(draft, account=self._account, trace=trace)
        try:
            async for attempt in AsyncRetrying(retry=retry_if_exception(_transient), stop=stop_after_attempt(5),
                                               wait=wait_exponential(multiplier=0.2, max=2), reraise=True):
                with attempt:
                    reply = await self._stub.Submit(order_pb2.SubmitRequest(intent=intent), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return SubmitOutcome(accepted=False, order_id="", state="REJECTED", reason=exc.details() or "")
            raise
        order = reply.order
        state = order_state_name(order.state)
        accepted = state not in (OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED)
        return SubmitOutcome(accepted=accepted, order_id=order.order_id, state=state,
                             reason=order.reason, duplicate=reply.duplicate)
