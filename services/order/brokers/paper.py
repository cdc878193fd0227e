"""The paper venue: a deterministic fake exchange, the default broker.

Rules (same fills every run on the same quotes):
- an order's reference time is the time of the instrument's last quote when the venue
  accepts it (with no quote yet, the first quote seen becomes the reference);
- an order with a decision time (the data time of the newest quote its decision saw)
  fills only at quotes strictly later than it: its reference is the later of that last
  quote and decision_time + 1 µs (quote times are whole microseconds). Whether the venue
  has seen the decision's own quote yet or not, the same later quote fills it;
- an order becomes active only for quotes at least `latency` later than its reference;
- a market order fills at the next active quote: buys at ask + slippage, sells at bid - slippage;
- a limit order fills at its limit price when the opposite side crosses it
  (a buy when ask <= limit, a sell when bid >= limit);
- a stop order triggers when the market trades through its stop (a buy when
  ask >= stop, a sell when bid <= stop) and fills as a market order at that quote;
- at most `liquidity` units fill per quote (partial fills); IOC expires what does not
  fill at the first active quote, FOK fills whole at that quote or expires;
- commission per fill = notional * commission_rate + quantity * commission_per_unit.

Orders of one instrument are matched in acceptance order. The book (orders by
client id, fills) lives in a `VenueStore`: PostgreSQL schema `paper_venue` for the
process (so after a kill -9 `lookup` answers as a real venue would), or memory for
a backtest. The order plane never reads that store except through this class.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerOrder, BrokerPositionView,
                                         BrokerRejected)

OPEN_STATES = ("new", "partially_filled")
TICK = timedelta(microseconds=1)  # the finest step between two quote times


@dataclass(frozen=True, kw_only=True, slots=True)
class PaperSettings:
    slippage: Decimal = Decimal(0)
    liquidity: Decimal | None = None  # None: unlimited
    commission_rate: Decimal = Decimal(0)
    commission_per_unit: Decimal = Decimal(0)
    latency_ms: int = 0


@dataclass(kw_only=True, slots=True)
class VenueOrder:
    number: int
    order: BrokerOrder
    state: str
    filled: Decimal = Decimal(0)
    reference_time: datetime | None = None
    triggered: bool = False
    reason: str = ""
    fills: list[BrokerFill] = field(default_factory=list)

    @property
    def broker_order_id(self) -> str:
        return f"paper-{self.number}"

    def ack(self) -> BrokerAck:
        return BrokerAck(client_order_id=self.order.client_order_id, broker_order_id=self.broker_order_id,
                         state=self.state, filled_quantity=self.filled, reason=self.reason, fills=tuple(self.fills))


class VenueStore(Protocol):
    async def accept(self, order: BrokerOrder, reference_time: datetime | None) -> tuple[VenueOrder, bool]:
        """Stores a new order, or returns the one already stored under its client id (created=False)."""

    async def get(self, client_order_id: str) -> VenueOrder | None: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def save(self, order: VenueOrder, new_fill: BrokerFill | None = None) -> None: ...

    async def all_orders(self) -> list[VenueOrder]: ...


class MemoryVenueStore:
    def __init__(self) -> None:
        self._orders: dict[str, VenueOrder] = {}

    async def accept(self, order, reference_time):
        existing = self._orders.get(order.client_order_id)
        if existing is not None:
            return existing, False
        venue_order = VenueOrder(number=len(self._orders) + 1, order=order, state="new",
                                 reference_time=reference_time)
        self._orders[order.client_order_id] = venue_order
        return venue_order, True

    async def get(self, client_order_id):
        return self._orders.get(client_order_id)

    async def open_orders(self):
        return [o for o in self._orders.values() if o.state in OPEN_STATES]

    async def save(self, order, new_fill=None):
        self._orders[order.order.client_order_id] = order  # fills are already in order.fills

    async def all_orders(self):
        return list(self._orders.values())


class PaperBroker:
    """Implements `Broker`. Feed it quotes with `on_quote`; read its executions with `executions()`."""

    name = "paper"

    def __init__(self, store: VenueStore, settings: PaperSettings = PaperSettings()) -> None:
        self._store = store
        self._settings = settings
        self._latency = timedelta(milliseconds=settings.latency_ms)
        self._lock = asyncio.Lock()
        self._working: list[VenueOrder] = []
        self._last_quote_time: dict[str, datetime] = {}
        self._executions: asyncio.Queue[BrokerExecution] = asyncio.Queue()

    async def load(self) -> None:
        """Picks up working orders after a restart, so resting limit orders keep working."""
        async with self._lock:
            self._working = sorted(await self._store.open_orders(), key=lambda o: o.number)

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        if order.quantity <= 0:
            raise BrokerRejected(f"quantity {order.quantity} must be positive")
        if order.order_type not in ("market", "limit", "stop"):
            raise BrokerRejected(f"order type {order.order_type!r} is not supported by the paper venue")
        async with self._lock:
            venue_order, created = await self._store.accept(order, self._reference_time(order))
            if created:
                self._working.append(venue_order)
            return venue_order.ack()

    async def cancel(self, client_order_id: str) -> BrokerAck:
        async with self._lock:
            venue_order = await self._store.get(client_order_id)
            if venue_order is None:
                raise BrokerRejected(f"the paper venue has no order with client id {client_order_id!r}")
            if venue_order.state in OPEN_STATES:
                venue_order = self._find_working(client_order_id) or venue_order
                venue_order.state = "canceled"
                venue_order.reason = "canceled on request"
                await self._store.save(venue_order)
                self._working = [o for o in self._working if o.order.client_order_id != client_order_id]
            return venue_order.ack()

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        async with self._lock:
            venue_order = self._find_working(client_order_id) or await self._store.get(client_order_id)
            return None if venue_order is None else venue_order.ack()

    async def positions(self, account: str) -> list[BrokerPositionView]:
        """Net per instrument, average-cost price, as a venue reports it."""
        async with self._lock:
            orders = await self._store.all_orders()
        book: dict[str, tuple[Decimal, Decimal]] = {}  # instrument -> (signed qty, avg price)
        for venue_order in sorted(orders, key=lambda o: o.number):
            if venue_order.order.account != account:
                continue
            for fill in venue_order.fills:
                signed = fill.quantity if venue_order.order.side == "buy" else -fill.quantity
                qty, avg = book.get(venue_order.order.instrument, (Decimal(0), Decimal(0)))
                new_qty = qty + signed
                if qty == 0 or (qty > 0) == (signed > 0):
                    avg = (qty * avg + signed * fill.price) / new_qty
                elif new_qty != 0 and (new_qty > 0) != (qty > 0):
                    avg = fill.price  # flipped: the rest opened at this price
                book[venue_order.order.instrument] = (new_qty, avg if new_qty != 0 else Decimal(0))
        return [BrokerPositionView(account=account, instrument=i, quantity=q, average_price=a)
                for i, (q, a) in sorted(book.items()) if q != 0]

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        while True:
            yield await self._executions.get()

    def drain_executions(self) -> list[BrokerExecution]:
        """Executions produced so far, without waiting (a backtest pulls them after each quote)."""
        drained = []
        while not self._executions.empty():
            drained.append(self._executions.get_nowait())
        return drained

    async def on_quote(self, instrument: str, time: datetime, bid: Decimal, ask: Decimal) -> None:
        async with self._lock:
            self._last_quote_time[instrument] = time
            still_working = []
            for venue_order in self._working:
                if venue_order.order.instrument == instrument:
                    await self._match(venue_order, time, bid, ask)
                if venue_order.state in OPEN_STATES:
                    still_working.append(venue_order)
            self._working = still_working

    def _reference_time(self, order: BrokerOrder) -> datetime | None:
        """The time latency counts from; None (no quote yet, no decision time) means the first quote.

        With a decision time the reference is never None, and it is stored with the order,
        so the rule holds after a restart without the venue keeping the decision time.
        """
        last = self._last_quote_time.get(order.instrument)
        if order.decision_time is None:
            return last
        not_before = order.decision_time + TICK
        return not_before if last is None else max(last, not_before)

    def _find_working(self, client_order_id: str) -> VenueOrder | None:
        return next((o for o in self._working if o.order.client_order_id == client_order_id), None)

    async def _match(self, venue_order: VenueOrder, time: datetime, bid: Decimal, ask: Decimal) -> None:
        order = venue_order.order
        if venue_order.reference_time is None:
            venue_order.reference_time = time
            if self._latency:
                await self._store.save(venue_order)
                return
        if time < venue_order.reference_time + self._latency:
            return
        buy = order.side == "buy"
        if order.order_type == "stop" and not venue_order.triggered:
            if (buy and ask >= order.stop_price) or (not buy and bid <= order.stop_price):
                venue_order.triggered = True
            else:
                return
        if order.order_type == "limit":
            crosses = ask <= order.limit_price if buy else bid >= order.limit_price
            price = order.limit_price
        else:
            crosses = True
            price = ask + self._settings.slippage if buy else bid - self._settings.slippage
        remaining = order.quantity - venue_order.filled
        quantity = remaining if self._settings.liquidity is None else min(remaining, self._settings.liquidity)
        if not crosses or (order.time_in_force == "FOK" and quantity < remaining):
            if order.time_in_force in ("IOC", "FOK"):
                await self._expire(venue_order, "not enough liquidity to fill whole (FOK)" if crosses
                                   else "the price did not cross at the first quote (IOC/FOK)")
            return
        commission = quantity * price * self._settings.commission_rate + quantity * self._settings.commission_per_unit
        fill = BrokerFill(broker_fill_id=f"{venue_order.broker_order_id}-{len(venue_order.fills) + 1}",
                          client_order_id=order.client_order_id, quantity=quantity, price=price,
                          commission=commission, time=time)
        venue_order.fills.append(fill)
        venue_order.filled += quantity
        venue_order.state = "filled" if venue_order.filled >= order.quantity else "partially_filled"
        await self._store.save(venue_order, fill)
        self._executions.put_nowait(BrokerExecution(client_order_id=order.client_order_id,
                                                    broker_order_id=venue_order.broker_order_id,
                                                    state=venue_order.state, fill=fill))
        if venue_order.state == "partially_filled" and order.time_in_force == "IOC":
            await self._expire(venue_order, f"IOC rest of {order.quantity - venue_order.filled} expired")

    async def _expire(self, venue_order: VenueOrder, reason: str) -> None:
        venue_order.state = "expired"
        venue_order.reason = reason
        await self._store.save(venue_order)
        self._executions.put_nowait(BrokerExecution(client_order_id=venue_order.order.client_order_id,
                                                    broker_order_id=venue_order.broker_order_id,
                                                    state="expired", reason=reason))
