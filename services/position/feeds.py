"""The position plane's clients of its neighbours: fills from order, marks from market data,
and the broker's positions (through order) for reconciliation.

Both followers reconnect forever through services/common/reconnect.py, as every follower
of the mesh does: a stream that delivered and then broke is asked again at once, a peer
that stays down at most every half second. The fill follower always resumes after the
last seq the engine applied (0 on a fresh database: from the first fill), so a reconnect
or a restart neither skips nor double-counts a fill.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import grpc
from opentelemetry import trace

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.channels import open_channel
from services.common.reconnect import follow_forever
from services.common.wire import SIDE_FROM_PROTO
from services.common.telemetry import context_from
from services.common.timeutil import from_timestamp
from services.position.engine import BrokerPosition, PositionEngine
from services.position.financing import FinancingCharge
from services.position.ledger import LedgerFill, Mark

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)



class MalformedFill(ValueError):
    """A fill the ledger cannot apply; the follower stops there rather than skip money."""


def fill_from_proto(fill: order_pb2.Fill) -> LedgerFill:
    try:
        return LedgerFill(
            fill_id=fill.fill_id, account=fill.account, instrument=fill.instrument, strategy=fill.strategy_slug,
            side=SIDE_FROM_PROTO.get(fill.side, "unspecified"), quantity=Decimal(fill.quantity), price=Decimal(fill.price),
            commission=Decimal(fill.commission or "0"), time=from_timestamp(fill.time))
    except (InvalidOperation, ValueError) as exc:
        raise MalformedFill(f"fill {fill.fill_id!r} cannot be applied: {exc}") from None


def mark_from_proto(tick: market_data_pb2.Tick) -> Mark | None:
    try:
        bid, ask = Decimal(tick.bid), Decimal(tick.ask)
    except InvalidOperation:
        return None
    if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask <= 0:
        return None
    return Mark(instrument=tick.instrument, bid=bid, ask=ask, time=from_timestamp(tick.time))


def _ended(what: str, delivered: bool, exc: grpc.RpcError | None = None) -> bool:
    """The outcome of one session for follow_forever: a stream that delivered and then ended or
    broke is reported and followed again at once; one that broke before delivering fails with its
    error, and one that ended empty answers False, which follow_forever backs off from as a failure."""
    if not delivered:
        if exc is not None:
            raise exc
        return False
    log.warning(f"{what} ended; following it again", extra={
        "error": exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else None})
    return True


class FillFollower:
    """Follows Order.WatchFills and applies every fill to the engine, exactly once."""

    def __init__(self, engine: PositionEngine, address: str, *, token: str | None = None,
                 channel_factory: Callable[[str], grpc.aio.Channel] | None = None) -> None:
        self._engine = engine
        self._address = address
        self._channel_factory = channel_factory or (lambda a: open_channel(a, token=token))
        self.subscriptions = 0

    async def run(self) -> None:
        await follow_forever(self._follow_once, what="fill stream from the order plane", address=self._address,
                             log=log)

    async def _follow_once(self) -> bool:
        """One WatchFills call; True when it applied at least one fill before it ended (see `_ended`)."""
        delivered = False
        async with self._channel_factory(self._address) as channel:
            stub = order_pb2_grpc.OrderStub(channel)
            after = self._engine.last_fill_seq
            self.subscriptions += 1
            log.info("following fills", extra={"address": self._address, "resume_after_seq": after})
            try:
                async for event in stub.WatchFills(order_pb2.WatchFillsRequest(resume_after_seq=after)):
                    with tracer.start_as_current_span("position.apply_fill", context=context_from(event.trace_context),
                                                      attributes={"fill.seq": event.seq, "fill.id": event.fill.fill_id}):
                        fill = fill_from_proto(event.fill)
                        await self._engine.apply_fill(event.seq, fill)
                    delivered = True
            except grpc.RpcError as exc:
                return _ended("fill stream from the order plane", delivered, exc)
        return _ended("fill stream from the order plane", delivered)


class MarkFollower:
    """Follows MarketData.StreamTicks (every instrument) and marks positions live only."""

    def __init__(self, engine: PositionEngine, address: str, *, token: str | None = None) -> None:
        self._engine = engine
        self._address = address
        self._token = token

    async def run(self) -> None:
        await follow_forever(self._follow_once, what="tick stream from market data", address=self._address, log=log)

    async def _follow_once(self) -> bool:
        """One StreamTicks call; True when it delivered at least one tick before it ended (see `_ended`)."""
        delivered = False
        async with open_channel(self._address, token=self._token, traced=False) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            try:
                async for event in stub.StreamTicks(market_data_pb2.StreamTicksRequest()):
                    delivered = True
                    mark = mark_from_proto(event.tick)
                    if mark is not None:
                        await self._engine.apply_mark(mark)
            except grpc.RpcError as exc:
                return _ended("tick stream from market data", delivered, exc)
        return _ended("tick stream from market data", delivered)


def financing_from_proto(charge: order_pb2.FinancingCharge) -> FinancingCharge:
    """A charge the venue reported, as the ledger books it (once per the venue's id)."""
    try:
        return FinancingCharge(
            charge_id=f"venue:{charge.financing_id}", account=charge.account, instrument=charge.instrument,
            strategy=charge.strategy_slug, time=from_timestamp(charge.time), amount=Decimal(charge.amount),
            currency=charge.currency, quantity=Decimal(0), source="venue")
    except (InvalidOperation, ValueError) as exc:
        raise MalformedFill(f"venue financing {charge.financing_id!r} cannot be booked: {exc}") from None


class FinancingFollower:
    """QUANTMESH_FINANCING_SOURCE=venue: asks the order plane for the financing the venue reported
    (Order.ListFinancing) every `poll_seconds` and books each charge once. It starts from the first
    charge at every start: the ledger knows which it booked (by the venue's id), and charges are
    few (one per trade per day)."""

    def __init__(self, engine: PositionEngine, address: str, *, poll_seconds: float, token: str | None = None,
                 channel_factory: Callable[[str], grpc.aio.Channel] | None = None) -> None:
        self._engine = engine
        self._address = address
        self._poll_seconds = poll_seconds
        self._channel_factory = channel_factory or (lambda a: open_channel(a, token=token))
        self.after_seq = 0
        self.booked = 0

    async def run(self) -> None:
        async with self._channel_factory(self._address) as channel:
            stub = order_pb2_grpc.OrderStub(channel)
            while True:
                try:
                    await self.poll(stub)
                except (grpc.aio.AioRpcError, MalformedFill) as exc:  # the next round asks again
                    log.warning("could not read venue financing from the order plane; asking again",
                                extra={"address": self._address, "error": str(exc)})
                await asyncio.sleep(self._poll_seconds)

    async def poll(self, stub: order_pb2_grpc.OrderStub) -> None:
        while True:
            reply = await stub.ListFinancing(order_pb2.ListFinancingRequest(after_seq=self.after_seq, limit=1000),
                                             timeout=10.0, wait_for_ready=True)
            for charge in reply.charges:
                if await self._engine.apply_financing(financing_from_proto(charge)):
                    self.booked += 1
                    log.info("venue financing booked", extra={
                        "financing_id": charge.financing_id, "strategy": charge.strategy_slug,
                        "amount": charge.amount, "currency": charge.currency})
                self.after_seq = charge.seq
            if not reply.charges or self.after_seq >= reply.last_seq:
                return


@dataclass(frozen=True, slots=True)
class BrokerView:
    broker: str
    positions: list[BrokerPosition]
    last_fill_seq: int  # the order plane's recorded fills when the venue answered


class BrokerPositionsClient:
    """Asks the order plane for the broker's own positions."""

    def __init__(self, address: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        self._channel = open_channel(address, token=token)
        self._stub = order_pb2_grpc.OrderStub(self._channel)
        self._timeout = timeout

    async def positions(self, account: str) -> tuple[str, list[BrokerPosition]]:
        view = await self.view(account)
        return view.broker, view.positions

    async def view(self, account: str) -> "BrokerView":
        """The venue's positions, netted per instrument (a venue that keeps sides reports two entries
        for one instrument: the ledger nets, so the comparison does too)."""
        # wait_for_ready: a channel that failed while the order plane was starting backs off on its
        # own; the call waits (within the timeout) for it to connect instead of failing at once.
        reply = await self._stub.GetBrokerPositions(order_pb2.GetBrokerPositionsRequest(account=account),
                                                    timeout=self._timeout, wait_for_ready=True)
        net: dict[str, tuple[Decimal, Decimal | None, int]] = {}
        for item in reply.positions:
            try:
                quantity = Decimal(item.quantity)
                price = Decimal(item.average_price) if item.average_price else None
            except InvalidOperation:
                raise ValueError(f"the broker reported {item.instrument} with quantity {item.quantity!r} and "
                                 f"average price {item.average_price!r}, which are not decimals") from None
            total, first_price, count = net.get(item.instrument, (Decimal(0), price, 0))
            net[item.instrument] = (total + quantity, first_price, count + 1)
        # An average price means nothing across two sides: the adjustment then prices at the mark.
        positions = [BrokerPosition(instrument=i, quantity=q, average_price=p if n == 1 else None)
                     for i, (q, p, n) in sorted(net.items())]
        return BrokerView(broker=reply.broker, positions=positions, last_fill_seq=reply.last_fill_seq)

    async def close(self) -> None:
        await self._channel.close()


async def cancel_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
