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
- a trailing stop is a stop whose trigger follows the market: a sell's trigger is the highest
  of (its stop price if set, bid - distance) over its active quotes, a buy's the lowest of
  (its stop price if set, ask + distance). Each quote is first checked against the trigger as
  it stood before that quote, then moves it; so it never triggers on the quote that set it;
- at most `liquidity` units fill per quote (partial fills); IOC expires what does not
  fill at the first active quote, FOK fills whole at that quote or expires;
- commission per fill = notional * commission_rate + quantity * commission_per_unit.

Orders of one instrument are matched in acceptance order. Orders that share an `oco_group`
cancel each other: the first to fill (even partly) cancels the rest at that quote. The book (orders by
client id, fills) lives in a `VenueStore`: PostgreSQL schema `paper_venue` for the
process (so after a kill -9 `lookup` answers as a real venue would), or memory for
a backtest. The order plane never reads that store except through this class.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from services.common.eager import start_eagerly
from services.common.vocabulary import Side
from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerOrder, BrokerPositionView,
                                         BrokerRejected, OutcomeUnknown)

OPEN_STATES = ("new", "partially_filled")
TICK = timedelta(microseconds=1)  # the finest step between two quote times


@dataclass(frozen=True, kw_only=True, slots=True)
class PaperSettings:
    slippage: Decimal = Decimal(0)
    liquidity: Decimal | None = None  # None: unlimited
    commission_rate: Decimal = Decimal(0)
    commission_per_unit: Decimal = Decimal(0)
    latency_ms: int = 0

    @classmethod
    def from_env(cls, env) -> "PaperSettings":
        """QUANTMESH_PAPER_*: read once, by the order plane and by every backtest alike."""
        liquidity = env.decimal("QUANTMESH_PAPER_LIQUIDITY", Decimal(0), minimum=Decimal(0))
        return cls(
            slippage=env.decimal("QUANTMESH_PAPER_SLIPPAGE", Decimal(0), minimum=Decimal(0)),
            # 0 (the default) means unlimited liquidity: every order fills whole.
            liquidity=liquidity if liquidity > 0 else None,
            commission_rate=env.decimal("QUANTMESH_PAPER_COMMISSION_RATE", Decimal(0), minimum=Decimal(0)),
            commission_per_unit=env.decimal("QUANTMESH_PAPER_COMMISSION_PER_UNIT", Decimal(0), minimum=Decimal(0)),
            latency_ms=env.int("QUANTMESH_PAPER_LATENCY_MS", 0, minimum=0),
        )


@dataclass(kw_only=True, slots=True)
class VenueOrder:
    number: int
    order: BrokerOrder
    state: str
    filled: Decimal = Decimal(0)
    reference_time: datetime | None = None
    triggered: bool = False
    reason: str = ""
    trail_stop: Decimal | None = None  # a trailing stop's trigger now (stored: it outlives a restart)
    fills: list[BrokerFill] = field(default_factory=list)

    @property
    def broker_order_id(self) -> str:
        return f"paper-{self.number}"

    def ack(self) -> BrokerAck:
        return BrokerAck(client_order_id=self.order.client_order_id, broker_order_id=self.broker_order_id,
                         state=self.state, filled_quantity=self.filled, reason=self.reason, fills=tuple(self.fills))


class VenueStore(Protocol):
    async def load(self) -> tuple[list[VenueOrder], int]:
        """The working orders (in acceptance order) and the highest order number ever used."""

    async def accept(self, order: VenueOrder) -> bool:
        """Stores a new order; False when its client id is stored already (nothing is written)."""

    async def get(self, client_order_id: str) -> VenueOrder | None: ...

    async def save(self, order: VenueOrder, new_fill: BrokerFill | None = None) -> None: ...

    async def all_orders(self) -> list[VenueOrder]: ...


class MemoryVenueStore:
    def __init__(self) -> None:
        self._orders: dict[str, VenueOrder] = {}

    async def load(self):
        working = sorted((o for o in self._orders.values() if o.state in OPEN_STATES), key=lambda o: o.number)
        return working, max((o.number for o in self._orders.values()), default=0)

    async def accept(self, order):
        if order.order.client_order_id in self._orders:
            return False
        self._orders[order.order.client_order_id] = order
        return True

    async def get(self, client_order_id):
        return self._orders.get(client_order_id)

    async def save(self, order, new_fill=None):
        self._orders[order.order.client_order_id] = order  # fills are already in order.fills

    async def all_orders(self):
        return sorted(self._orders.values(), key=lambda o: o.number)


class PaperBroker:
    """Implements `Broker`. Feed it quotes with `on_quote`; read its executions with `executions()`.

    No lock is held across a store write: a submit takes its number and reference time under
    the lock, then waits for its durable acceptance outside it, so many submits share one
    group commit. A quote first waits for the acceptances in flight, so an order accepted
    before a quote arrived is matched against it, exactly as if it had been stored at once.
    """

    name = "paper"
    trailing_stops = True  # simulated tick by tick

    def __init__(self, store: VenueStore, settings: PaperSettings = PaperSettings()) -> None:
        self._store = store
        self._settings = settings
        self._latency = timedelta(milliseconds=settings.latency_ms)
        self._lock = asyncio.Lock()
        self._working: list[VenueOrder] = []  # in acceptance order: the matching order
        self._working_by_cid: dict[str, VenueOrder] = {}
        self._accepting: dict[str, tuple[VenueOrder, asyncio.Future]] = {}
        self._last_number = 0
        self._last_quote_time: dict[str, datetime] = {}
        self._executions: asyncio.Queue[BrokerExecution] = asyncio.Queue()

    async def load(self) -> None:
        """Picks up working orders after a restart, so resting limit orders keep working."""
        async with self._lock:
            self._working, self._last_number = await self._store.load()
            self._working_by_cid = {o.order.client_order_id: o for o in self._working}

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        if order.quantity <= 0:
            raise BrokerRejected(f"quantity {order.quantity} must be positive")
        if order.order_type not in ("market", "limit", "stop", "trailing_stop"):
            raise BrokerRejected(f"order type {order.order_type!r} is not supported by the paper venue")
        if order.order_type == "trailing_stop" and not (order.trail_distance and order.trail_distance > 0):
            raise BrokerRejected("a trailing stop needs a positive trail distance")
        cid = order.client_order_id
        async with self._lock:
            known = self._find_working(cid)
            if known is not None:
                return known.ack()
            if cid in self._accepting:
                venue_order, write = self._accepting[cid]
            else:
                self._last_number += 1
                venue_order = VenueOrder(number=self._last_number, order=order, state="new",
                                         reference_time=self._reference_time(order),
                                         trail_stop=order.stop_price if order.order_type == "trailing_stop" else None)
                write = start_eagerly(self._store.accept(venue_order))  # a memory book: done at once, no task
                self._accepting[cid] = (venue_order, write)
        try:
            created = await asyncio.shield(write)
        except Exception as exc:  # the venue's own book failed: whether it kept the order is unknown
            async with self._lock:
                self._settle_accepts()
            raise OutcomeUnknown(f"the paper venue could not store the order: {exc}") from exc
        async with self._lock:
            self._settle_accepts()
        if not created:  # the client id was taken before this process knew it
            stored = await self._store.get(cid)
            return stored.ack()
        return venue_order.ack()

    def _settle_accepts(self) -> None:
        """Moves acceptances that completed into the working list, in acceptance order (call under the lock)."""
        done = [(cid, vo, write) for cid, (vo, write) in self._accepting.items() if write.done()]
        for cid, venue_order, write in done:
            del self._accepting[cid]
            if not write.cancelled() and write.exception() is None and write.result():
                bisect.insort(self._working, venue_order, key=lambda o: o.number)
                self._working_by_cid[cid] = venue_order

    async def _await_accepts(self) -> None:
        """Lets acceptances in flight land before matching or canceling (call under the lock)."""
        if self._accepting:
            await asyncio.gather(*(write for _, write in self._accepting.values()), return_exceptions=True)
            self._settle_accepts()

    async def cancel(self, client_order_id: str) -> BrokerAck:
        async with self._lock:
            await self._await_accepts()
            venue_order = self._find_working(client_order_id) or await self._store.get(client_order_id)
            if venue_order is None:
                raise BrokerRejected(f"the paper venue has no order with client id {client_order_id!r}")
            if venue_order.state not in OPEN_STATES:
                return venue_order.ack()
            venue_order.state = "canceled"
            venue_order.reason = "canceled on request"
            if self._working_by_cid.pop(client_order_id, None) is not None:
                self._working = [o for o in self._working if o.order.client_order_id != client_order_id]
            # Out of matching under the lock; stored outside it, so many cancels share a commit.
            write = start_eagerly(self._store.save(venue_order))
        await asyncio.shield(write)
        return venue_order.ack()

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        async with self._lock:
            await self._await_accepts()
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
                signed = Side(venue_order.order.side).signed(fill.quantity)
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
            await self._await_accepts()
            self._last_quote_time[instrument] = time
            changes: list[tuple[VenueOrder, BrokerFill | None, BrokerExecution | None]] = []
            still_working = []
            for venue_order in self._working:
                if venue_order.order.instrument == instrument and venue_order.state in OPEN_STATES:
                    filled_before = venue_order.filled
                    self._match(venue_order, time, bid, ask, changes)
                    if venue_order.order.oco_group and venue_order.filled > filled_before:
                        self._cancel_group(venue_order, changes)
                if venue_order.state in OPEN_STATES:
                    still_working.append(venue_order)
                else:
                    self._working_by_cid.pop(venue_order.order.client_order_id, None)
            self._working = still_working
            # Durable before announced: the book is stored (one group commit for the whole quote),
            # then the executions go out in the order they happened.
            writes = [start_eagerly(self._store.save(vo, fill)) for vo, fill, _ in changes]
            if all(write.done() for write in writes):  # a memory book: stored already, no turn of the loop
                for write in writes:
                    write.result()  # the first failure, as gather would raise it
            else:
                await asyncio.gather(*writes)
            for _, _, execution in changes:
                if execution is not None:
                    self._executions.put_nowait(execution)

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
        return self._working_by_cid.get(client_order_id)

    def _match(self, venue_order: VenueOrder, time: datetime, bid: Decimal, ask: Decimal, changes: list) -> None:
        order = venue_order.order
        if venue_order.reference_time is None:
            venue_order.reference_time = time
            if self._latency:
                changes.append((venue_order, None, None))
                return
        if time < venue_order.reference_time + self._latency:
            return
        buy = order.side == "buy"
        if order.order_type == "stop" and not venue_order.triggered:
            if (buy and ask >= order.stop_price) or (not buy and bid <= order.stop_price):
                venue_order.triggered = True
            else:
                return
        if order.order_type == "trailing_stop" and not venue_order.triggered:
            trigger = venue_order.trail_stop
            if trigger is not None and ((buy and ask >= trigger) or (not buy and bid <= trigger)):
                venue_order.triggered = True
            else:
                follows = ask + order.trail_distance if buy else bid - order.trail_distance
                if trigger is None or (follows < trigger if buy else follows > trigger):
                    venue_order.trail_stop = follows
                    changes.append((venue_order, None, None))  # stored, so a restart keeps the trail
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
                self._expire(venue_order, "not enough liquidity to fill whole (FOK)" if crosses
                             else "the price did not cross at the first quote (IOC/FOK)", changes)
            return
        commission = quantity * price * self._settings.commission_rate + quantity * self._settings.commission_per_unit
        fill = BrokerFill(broker_fill_id=f"{venue_order.broker_order_id}-{len(venue_order.fills) + 1}",
                          client_order_id=order.client_order_id, quantity=quantity, price=price,
                          commission=commission, time=time)
        venue_order.fills.append(fill)
        venue_order.filled += quantity
        venue_order.state = "filled" if venue_order.filled >= order.quantity else "partially_filled"
        changes.append((venue_order, fill, BrokerExecution(client_order_id=order.client_order_id,
                                                           broker_order_id=venue_order.broker_order_id,
                                                           state=venue_order.state, fill=fill)))
        if venue_order.state == "partially_filled" and order.time_in_force == "IOC":
            self._expire(venue_order, f"IOC rest of {order.quantity - venue_order.filled} expired", changes)

    def _cancel_group(self, filled: VenueOrder, changes: list) -> None:
        """One-cancels-other: the first of a group to fill cancels the others, in the same pass,
        so a later one of them cannot fill at this quote too."""
        group = filled.order.oco_group
        for other in self._working:
            if other is filled or other.order.oco_group != group or other.state not in OPEN_STATES:
                continue
            other.state = "canceled"
            other.reason = f"one-cancels-other: {filled.order.client_order_id} of group {group} filled"
            self._working_by_cid.pop(other.order.client_order_id, None)
            changes.append((other, None, BrokerExecution(client_order_id=other.order.client_order_id,
                                                         broker_order_id=other.broker_order_id, state="canceled",
                                                         reason=other.reason)))

    def _expire(self, venue_order: VenueOrder, reason: str, changes: list) -> None:
        venue_order.state = "expired"
        venue_order.reason = reason
        changes.append((venue_order, None, BrokerExecution(client_order_id=venue_order.order.client_order_id,
                                                           broker_order_id=venue_order.broker_order_id,
                                                           state="expired", reason=reason)))
