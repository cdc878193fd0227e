"""Protection held at the venue: a position's stop-loss and take-profit rest as orders there.

An entry may ask for protection (OrderIntent.stop_loss_distance / take_profit_distance /
trailing_stop_distance). Once it has filled, the order plane places, for the whole position of
that strategy in that instrument, a reduce-only STOP (the stop-loss), a reduce-only LIMIT (the
take-profit) at those distances from the entry's average fill price, and a reduce-only
TRAILING_STOP whose first trigger is that far from the fill price and which then follows the
market. They rest at the venue, so the
position is protected while a worker, or the whole mesh, is down; the venue's own rules
fill them tick by tick (the paper venue in backtests too).

One close, never two: the protective orders and every exit of the position share a
one-cancels-other group at the venue, so the first of them to fill cancels the others at
that very quote. After any change the position is looked at again: flat, its protective
orders are canceled; still open but uncovered (a partial close), protection is placed anew
for what is left; grown (another entry), it is replaced to cover the whole position at the
latest entry's price. Protective orders pass a global lock (they only reduce) and are
recorded like any order: strategy the position's, role EXIT, client id
"<order that caused it>.<time>.<n>:sl", ":tp" and ":ts".

A venue that protects on fill (OANDA: stopLossOnFill / trailingStopLossOnFill) is sent the
entry's stop-loss and trailing stop with the entry itself, under client ids
"<entry order id>.f:sl" / ".f:ts", so there is no moment between the fill and the stop, and the
trade the entry opens gets our id "<entry order id>". Once the entry has filled they are
recorded and looked up, not sent, and the take-profit ("<entry order id>.f:tp") is sent on that
trade at the fill price plus its distance (OANDA's takeProfitOnFill takes only a price, and a
market entry's fill price is not known when it is sent). All three belong to the trade (the
venue closes what is left of it with them, and cancels them when it closes), so they are not
replaced when the position changes, only canceled when it is flat.

A venue that holds one resting closing order per position (a spot exchange: nothing is
reduce-only, an open sell holds its coins, and no OCO list is sent) gets the stop-loss alone:
the take-profit and a trailing stop beside it would be refused there (ccxt_groups).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal

from services.common.vocabulary import IN_FLIGHT, OPEN, OrderType, Side, StrategyRole, TimeInForce
from services.order.brokers.base import ProtectionOnFill
from services.order.intents import Intent
from services.order.positions import OwnBook
from services.order.records import OrderRecord

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # (account, strategy, instrument)
SUFFIXES = (":sl", ":tp", ":ts")


@dataclass(frozen=True, slots=True)
class Spec:
    """The protection a position asked for: distances around the latest protected entry's price."""

    stop_loss: Decimal | None
    take_profit: Decimal | None
    reference_price: Decimal
    sign: int  # +1 long, -1 short: the position the spec was made for
    trailing_stop: Decimal | None = None
    entry_id: str = ""  # the entry's order id: names what a venue created on its fill
    entry_quantity: Decimal = Decimal(0)

    @classmethod
    def of(cls, entry: OrderRecord) -> "Spec":
        """The protection a filled entry asked for, around its average fill price."""
        i = entry.intent
        return cls(stop_loss=i.stop_loss_distance, take_profit=i.take_profit_distance,
                   trailing_stop=i.trailing_stop_distance, reference_price=entry.average_fill_price,
                   sign=1 if i.side == Side.BUY else -1, entry_id=entry.order_id,
                   entry_quantity=entry.filled_quantity)


def bound_id(entry_order_id: str, suffix: str) -> str:
    """The client id an entry gives a protective order the venue creates on its fill."""
    return f"{entry_order_id}.f{suffix}"


BOUND = (".f:sl", ".f:ts", ".f:tp")


def is_bound(order: OrderRecord) -> bool:
    """A protective order the venue holds on the trade an entry opened (a venue that protects on fill)."""
    return order.intent.client_order_id.endswith(BOUND)


def asks_protection(intent: Intent) -> bool:
    return bool(intent.stop_loss_distance or intent.take_profit_distance or intent.trailing_stop_distance)


def key_of(order: OrderRecord) -> Key:
    i = order.intent
    return i.account, i.strategy_slug, i.instrument


def group_of(key: Key) -> str:
    return "protect:" + ":".join(key)


def is_protective(order: OrderRecord) -> bool:
    return order.intent.client_order_id.endswith(SUFFIXES)


class Protection:
    def __init__(self, *, book: OwnBook, working: Callable[[], list[OrderRecord]],
                 submit: Callable[..., Awaitable], cancel: Callable[[str, str], Awaitable],
                 history: Callable[[Key], Awaitable[OrderRecord | None]], on_fill_venue: bool = False,
                 record: Callable[[Intent], Awaitable[OrderRecord]] | None = None, one_close: bool = False) -> None:
        self._book = book
        self._working = working  # the journal's working orders
        self._submit = submit  # engine.submit(intent, actor, role=..., operator_exit=True)
        self._cancel = cancel  # (client id, reason) -> the order after its cancel
        self._history = history  # the latest protected entry of a key, from the store (after a restart)
        self._specs: dict[Key, Spec] = {}
        self._locks: dict[Key, asyncio.Lock] = {}
        self._placements = itertools.count(1)
        self._looked_up: set[Key] = set()  # keys whose store history was read once since the start
        self._on_fill_venue = on_fill_venue  # the venue creates the stop-loss and trailing stop on fill
        self._record = record  # engine.record_placed_by_venue
        self._recorded: set[str] = set()  # bound client ids recorded since the start
        self._one_close = one_close  # the venue holds one resting close per position: the stop-loss alone

    def group_for(self, order: OrderRecord) -> str:
        """The venue group of an order about to be sent: protective orders, and exits of a protected position."""
        key = key_of(order)
        if is_protective(order):
            return group_of(key)
        intent = order.intent
        if (intent.role == StrategyRole.EXIT or intent.reduce_only) and self._children(key):
            return group_of(key)
        return ""

    def on_fill_for(self, order: OrderRecord) -> ProtectionOnFill | None:
        """What the venue is to create when this entry fills: only for a venue that protects on fill."""
        i = order.intent
        if not self._on_fill_venue or i.role != StrategyRole.ENTRY or i.reduce_only or not asks_protection(i):
            return None
        return ProtectionOnFill(
            stop_loss=i.stop_loss_distance, stop_loss_id=bound_id(order.order_id, ":sl") if i.stop_loss_distance else "",
            trailing_stop=i.trailing_stop_distance,
            trailing_stop_id=bound_id(order.order_id, ":ts") if i.trailing_stop_distance else "",
            trade_client_id=order.order_id)

    def on_trade_for(self, order: OrderRecord) -> str:
        """The trade (our id for it) a take-profit is placed on, at a venue that protects on fill."""
        cid = order.intent.client_order_id
        return cid.removesuffix(".f:tp") if self._on_fill_venue and cid.endswith(".f:tp") else ""

    async def on_change(self, order: OrderRecord) -> None:
        """After an order of a position moved (filled, canceled, ...): keep the position covered."""
        key = key_of(order)
        intent = order.intent
        if asks_protection(intent) and order.filled_quantity > 0:
            self._specs[key] = Spec.of(order)
        # After a restart the spec is read back first, even when protective orders are working:
        # without it they would look unwanted and be canceled, leaving the position bare.
        if key not in self._specs and not await self._restore(key) and not self._children(key):
            return  # an unprotected position: nothing to keep
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            await self._cover(key, trigger=order)

    async def _restore(self, key: Key) -> bool:
        """After a restart memory is empty: the store knows the position's latest protected entry
        (read once per position and process, so unprotected positions cost nothing on the way)."""
        if key in self._looked_up or self._book.strategy(*key) == 0:
            return False
        self._looked_up.add(key)
        entry = await self._history(key)
        if entry is None:
            return False
        self._specs[key] = Spec.of(entry)
        return True

    async def _cover(self, key: Key, trigger: OrderRecord) -> None:
        position = self._book.strategy(*key)
        children = self._children(key)
        spec = self._specs.get(key)
        if spec is not None and (position == 0 or (position > 0) != (spec.sign > 0)):
            spec = None  # flat, or flipped the other way: the old protection no longer applies
            self._specs.pop(key, None)
        # Client ids unique per placement: the trigger's id, its change time and a counter (a re-placed
        # protection must never be answered with the canceled one as a duplicate).
        stamp = f"{trigger.order_id}.{int(trigger.updated_time.timestamp() * 1_000_000)}.{next(self._placements)}"
        wanted = self._intents(key, position, spec, stamp) if spec is not None else []
        if spec is not None and self._on_fill_venue:
            # The venue holds the stop-loss and trailing stop on the entry's trade: record them, and
            # place the take-profit on that trade; all of them stay with their trade.
            await self._record_bound(key, spec)
            for take_profit in (w for w in wanted if w.order_type == OrderType.LIMIT):
                await self._place_bound(replace(take_profit, client_order_id=bound_id(spec.entry_id, ":tp"),
                                                quantity=spec.entry_quantity), key)
            wanted = []
            children = [c for c in children if not is_bound(c)]
        if self._one_close and any(w.order_type == OrderType.STOP for w in wanted):
            wanted = [w for w in wanted if w.order_type == OrderType.STOP]
        have = sorted(_terms(c.intent, c.intent.quantity - c.filled_quantity) for c in children)
        want = sorted(_terms(i, i.quantity) for i in wanted)
        if have == want:
            return
        for child in children:  # first take the old protection away, so two sets never rest together
            try:
                await self._cancel(child.intent.client_order_id, "protection replaced: the position changed")
            except Exception as exc:  # filled or canceled meanwhile: the next change looks again
                log.info("protective order not canceled", extra={"order_id": child.order_id, "why": str(exc)})
        for intent in wanted:
            order, _ = await self._submit(intent, "protection", role="service", operator_exit=True)
            log.info("protection placed", extra={"order_id": order.order_id, "state": order.state.value,
                                                 "position": str(position), "key": list(key)})

    async def _place_bound(self, intent: Intent, key: Key) -> None:
        """Sends a take-profit on the entry's trade, once (its id is the entry's: a retry is the same order)."""
        if intent.client_order_id in self._recorded:
            return
        order, _ = await self._submit(intent, "protection", role="service", operator_exit=True)
        self._recorded.add(intent.client_order_id)
        log.info("take-profit placed on the trade", extra={"order_id": order.order_id, "state": order.state.value,
                                                           "key": list(key)})

    async def _record_bound(self, key: Key, spec: Spec) -> None:
        """Records the orders the venue created on the spec's entry fill."""
        account, slug, instrument = key
        long = spec.sign > 0
        for distance, suffix, kind in ((spec.stop_loss, ":sl", OrderType.STOP),
                                       (spec.trailing_stop, ":ts", OrderType.TRAILING_STOP)):
            if distance is None:
                continue
            cid = bound_id(spec.entry_id, suffix)
            if cid in self._recorded or self._record is None:
                continue
            stop = spec.reference_price - distance if long else spec.reference_price + distance
            intent = Intent(client_order_id=cid, strategy_slug=slug, role=StrategyRole.EXIT, instrument=instrument,
                            side=Side.SELL if long else Side.BUY, quantity=spec.entry_quantity, order_type=kind,
                            stop_price=stop, trail_distance=distance if kind == OrderType.TRAILING_STOP else None,
                            time_in_force=TimeInForce.GTC, reduce_only=True, account=account,
                            note=f"{'trailing stop' if kind == OrderType.TRAILING_STOP else 'stop-loss'} {distance} "
                                 f"created by the venue on the fill of {spec.entry_id} at {spec.reference_price}")
            order = await self._record(intent)
            self._recorded.add(cid)
            log.info("protection held by the venue recorded", extra={"order_id": order.order_id,
                                                                     "state": order.state.value, "key": list(key)})

    def _children(self, key: Key) -> list[OrderRecord]:
        return [o for o in self._working() if is_protective(o) and key_of(o) == key
                and (o.state in OPEN or o.state in IN_FLIGHT)]

    @staticmethod
    def _intents(key: Key, position: Decimal, spec: Spec, stamp: str) -> list[Intent]:
        account, slug, instrument = key
        long = position > 0
        side = Side.SELL if long else Side.BUY
        quantity = abs(position)
        out = []
        if spec.stop_loss is not None:
            stop = spec.reference_price - spec.stop_loss if long else spec.reference_price + spec.stop_loss
            if stop > 0:
                out.append(Intent(client_order_id=f"{stamp}:sl", strategy_slug=slug,
                                  role=StrategyRole.EXIT, instrument=instrument, side=side, quantity=quantity,
                                  order_type=OrderType.STOP, stop_price=stop, time_in_force=TimeInForce.GTC,
                                  reduce_only=True, account=account,
                                  note=f"stop-loss {spec.stop_loss} from {spec.reference_price}"))
        if spec.take_profit is not None:
            limit = spec.reference_price + spec.take_profit if long else spec.reference_price - spec.take_profit
            if limit > 0:
                out.append(Intent(client_order_id=f"{stamp}:tp", strategy_slug=slug,
                                  role=StrategyRole.EXIT, instrument=instrument, side=side, quantity=quantity,
                                  order_type=OrderType.LIMIT, limit_price=limit, time_in_force=TimeInForce.GTC,
                                  reduce_only=True, account=account,
                                  note=f"take-profit {spec.take_profit} from {spec.reference_price}"))
        if spec.trailing_stop is not None:
            first = spec.reference_price - spec.trailing_stop if long else spec.reference_price + spec.trailing_stop
            out.append(Intent(client_order_id=f"{stamp}:ts", strategy_slug=slug,
                              role=StrategyRole.EXIT, instrument=instrument, side=side, quantity=quantity,
                              order_type=OrderType.TRAILING_STOP, trail_distance=spec.trailing_stop,
                              stop_price=first if first > 0 else None, time_in_force=TimeInForce.GTC,
                              reduce_only=True, account=account,
                              note=f"trailing stop {spec.trailing_stop} behind the market from {spec.reference_price}"))
        return out


def _terms(intent: Intent, quantity: Decimal) -> tuple:
    """What makes two protective orders the same: one need not replace the other."""
    return (intent.order_type, intent.side, quantity, intent.stop_price or Decimal(0),
            intent.limit_price or Decimal(0), intent.trail_distance or Decimal(0))
