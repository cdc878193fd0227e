"""A loopback TEST DOUBLE of the order plane's WatchFills and GetBrokerPositions.

Only for the position plane's own integration tests, while the real order plane
is being written: a small grpc.aio server implementing quantmesh.order.v1.Order
that streams the fills a test injects (resumably, by seq) and answers
GetBrokerPositions with the positions a test sets. It can cut every open stream
(UNAVAILABLE) and, to model an at-least-once redelivery, replay from an earlier
seq than the subscriber asked for.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.server import GrpcHost, binding
from services.common.auth import TokenTable
from services.common.timeutil import to_timestamp


class FakeOrderFeed(order_pb2_grpc.OrderServicer):
    def __init__(self) -> None:
        self.events: list[order_pb2.WatchFillsResponse] = []
        self.resume_requests: list[int | None] = []
        self.broker_positions: list[order_pb2.BrokerPosition] = []
        self.redeliver_from: int | None = None  # next subscription replays after this seq, whatever it asked
        self._changed = asyncio.Condition()
        self._generation = 0  # bumped to cut every open stream
        self.host: GrpcHost | None = None

    # ------------------------------------------------------------- test controls

    async def add_fill(self, *, side: str, quantity: str, price: str, strategy: str = "s1",
                       instrument: str = "USD_JPY", commission: str = "0", account: str = "paper",
                       time: datetime | None = None, traceparent: str = "") -> int:
        seq = len(self.events) + 1
        fill = order_pb2.Fill(
            fill_id=f"fill-{seq:06d}", order_id=f"ord-{seq:06d}", client_order_id=f"c-{seq}",
            strategy_slug=strategy, account=account, instrument=instrument,
            side=common_pb2.SIDE_BUY if side == "buy" else common_pb2.SIDE_SELL,
            quantity=quantity, price=price, commission=commission,
            time=to_timestamp(time or datetime(2024, 3, 1, 9, 0, seq % 60, tzinfo=timezone.utc)))
        self.events.append(order_pb2.WatchFillsResponse(
            seq=seq, fill=fill, trace_context=common_pb2.TraceContext(traceparent=traceparent)))
        async with self._changed:
            self._changed.notify_all()
        return seq

    def set_broker_position(self, instrument: str, quantity: str, average_price: str = "",
                            account: str = "paper") -> None:
        self.broker_positions = [p for p in self.broker_positions if p.instrument != instrument]
        self.broker_positions.append(order_pb2.BrokerPosition(account=account, instrument=instrument,
                                                              quantity=quantity, average_price=average_price))

    async def cut_streams(self) -> None:
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    async def start(self) -> str:
        self.host = GrpcHost(listen="127.0.0.1:0", tokens=TokenTable(), policy={}, grace_seconds=0.5,
                             bindings=[binding(order_pb2, "Order", order_pb2_grpc.add_OrderServicer_to_server, self)])
        await self.host.start()
        return self.host.address

    async def stop(self) -> None:
        if self.host is not None:
            await self.host.stop()

    # ------------------------------------------------------------- the contract

    async def WatchFills(self, request, context):
        asked = request.resume_after_seq if request.HasField("resume_after_seq") else None
        self.resume_requests.append(asked)
        position = len(self.events) if asked is None else asked
        if self.redeliver_from is not None:
            position, self.redeliver_from = self.redeliver_from, None
        generation = self._generation
        while True:
            while position < len(self.events):
                yield self.events[position]
                position += 1
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.events) > position or self._generation != generation)
            if self._generation != generation:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "the fake order plane cut the stream")

    async def GetBrokerPositions(self, request, context):
        account = request.account or "paper"
        return order_pb2.GetBrokerPositionsResponse(
            broker="fake-paper", positions=[p for p in self.broker_positions if p.account == account
                                            and Decimal(p.quantity) != 0])
