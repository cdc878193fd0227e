"""The mesh's tape: one readable line per order placed, filled, refused or canceled, and per flag change.

    10:41:07  placed    ma_cross.entry   BUY 10,000 USD_JPY market  (order 17)
    10:41:07  filled    ma_cross         BUY 10,000 USD_JPY @ 93.123  (market time 2013-02-04 09:15:45)
    10:41:09  refused   rsi_threshold.entry BUY 10,000 USD_JPY: risk.max_position_per_strategy: ...
    10:41:12  flags     v7 HALTED: global lock ON (open orders canceled) by anonymous: "kill switch drill"

It follows Order.WatchOrders, Order.WatchFills and Control.WatchFlags of a running mesh (what
`quantmesh up` prints after its banner, and `quantmesh status --follow`). A stream that breaks
(a plane restarting) is resumed after the last event seen, so no line is lost or repeated. The
line's time is this machine's clock; a fill also names its own time, which is the market's
(the feed's clock: in a replay or a fast synthetic run it runs ahead of the wall).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

import grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.reconnect import follow_forever

_STATES = {control_pb2.TRADING_STATE_ACTIVE: "ACTIVE", control_pb2.TRADING_STATE_REDUCING: "REDUCING",
           control_pb2.TRADING_STATE_HALTED: "HALTED"}
_ROLES = {common_pb2.STRATEGY_ROLE_ENTRY: "entry", common_pb2.STRATEGY_ROLE_EXIT: "exit"}
_SIDES = {common_pb2.SIDE_BUY: "BUY", common_pb2.SIDE_SELL: "SELL"}
_KINDS = {order_pb2.ORDER_TYPE_MARKET: "market", order_pb2.ORDER_TYPE_LIMIT: "limit",
          order_pb2.ORDER_TYPE_STOP: "stop", order_pb2.ORDER_TYPE_TRAILING_STOP: "trailing stop"}
#: Orders already announced as placed, so a later state of the same order does not say it again.
_REMEMBERED_ORDERS = 10_000


def amount(text: str) -> str:
    """A wire decimal with thousands separators: "10000" -> "10,000", "0.5" stays "0.5"."""
    try:
        return format(Decimal(text), ",f")
    except (InvalidOperation, ValueError):
        return text


def _side(value: int) -> str:
    return _SIDES.get(value, "?")


def _who(intent: order_pb2.OrderIntent) -> str:
    role = _ROLES.get(intent.role)
    return f"{intent.strategy_slug}.{role}" if role else intent.strategy_slug


def _what(intent: order_pb2.OrderIntent) -> str:
    kind = _KINDS.get(intent.order_type, "")
    price = f" {kind} {intent.limit_price or intent.stop_price}" if intent.limit_price or intent.stop_price else \
        f" {kind}"
    return f"{_side(intent.side)} {amount(intent.quantity)} {intent.instrument}{price}".rstrip()


class OrderLines:
    """Order events -> lines: placed (once per order), refused, canceled, expired. Fills say themselves."""

    def __init__(self) -> None:
        self._placed: OrderedDict[str, None] = OrderedDict()

    def line(self, order: order_pb2.OrderRecord) -> str | None:
        state, intent = order.state, order.intent
        if state == order_pb2.ORDER_STATE_REJECTED:
            why = f"{order.reject_rule}: {order.reason}" if order.reject_rule else order.reason
            return f"refused   {_who(intent):<20} {_what(intent)}: {why}"
        if state == order_pb2.ORDER_STATE_CANCELED:
            return f"canceled  {_who(intent):<20} {_what(intent)}  (order {order.order_id}{_reason(order)})"
        if state == order_pb2.ORDER_STATE_EXPIRED:
            return f"expired   {_who(intent):<20} {_what(intent)}  (order {order.order_id})"
        if state in (order_pb2.ORDER_STATE_NEW, order_pb2.ORDER_STATE_PARTIALLY_FILLED, order_pb2.ORDER_STATE_FILLED) \
                and order.order_id not in self._placed:
            self._placed[order.order_id] = None
            if len(self._placed) > _REMEMBERED_ORDERS:
                self._placed.popitem(last=False)
            return f"placed    {_who(intent):<20} {_what(intent)}  (order {order.order_id})"
        return None


def _reason(order: order_pb2.OrderRecord) -> str:
    return f": {order.reason}" if order.reason else ""


def fill_line(fill: order_pb2.Fill) -> str:
    when = fill.time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if fill.time.seconds else "?"
    commission = f", commission {amount(fill.commission)}" if fill.commission and Decimal(fill.commission) else ""
    return (f"filled    {fill.strategy_slug:<20} {_side(fill.side)} {amount(fill.quantity)} {fill.instrument} "
            f"@ {fill.price}  (order {fill.order_id}{commission}; market time {when})")


def _on(value: bool) -> str:
    return "on" if value else "OFF"


def flag_changes(before: control_pb2.FlagSnapshot | None, after: control_pb2.FlagSnapshot) -> list[str]:
    """What changed between two snapshots, in words; from nothing, only what is not plain ACTIVE."""
    changes = []
    if before is None:
        if after.global_lock:
            changes.append("global lock ON")
        if not after.global_entry_enabled:
            changes.append("entries OFF")
        if not after.global_exit_enabled:
            changes.append("exits OFF")
        changes += [f"{s.slug} entries OFF" for s in after.strategies if not s.entry_enabled]
        changes += [f"{s.slug} exits OFF" for s in after.strategies if not s.exit_enabled]
        return changes
    if before.global_lock != after.global_lock:
        changes.append("global lock ON" + (" (open orders canceled)" if after.lock_cancels_open_orders
                                           else " (resting orders keep working)") if after.global_lock
                       else "global lock off")
    if before.global_entry_enabled != after.global_entry_enabled:
        changes.append(f"entries {_on(after.global_entry_enabled)}")
    if before.global_exit_enabled != after.global_exit_enabled:
        changes.append(f"exits {_on(after.global_exit_enabled)}")
    old = {s.slug: s for s in before.strategies}
    for strategy in after.strategies:
        was = old.get(strategy.slug)
        if was is None or was.entry_enabled != strategy.entry_enabled:
            changes.append(f"{strategy.slug} entries {_on(strategy.entry_enabled)}")
        if was is None or was.exit_enabled != strategy.exit_enabled:
            changes.append(f"{strategy.slug} exits {_on(strategy.exit_enabled)}")
    return changes


def flags_line(changes: list[str], snapshot: control_pb2.FlagSnapshot, audit: list) -> str:
    who = ""
    if audit:
        entry = audit[0]
        who = f" by {entry.actor}" + (f': "{entry.reason}"' if entry.reason else "")
    return f"flags     v{snapshot.version} {_STATES.get(snapshot.state, '?')}: {', '.join(changes)}{who}"


class Tape:
    """Follows one mesh and hands each line, stamped with the wall clock, to `say`."""

    def __init__(self, *, order: grpc.aio.Channel, control: grpc.aio.Channel, say: Callable[[str], None],
                 log: logging.Logger, now: Callable[[], datetime] = datetime.now) -> None:
        self._orders = order_pb2_grpc.OrderStub(order)
        self._control = control_pb2_grpc.ControlStub(control)
        self._say = say
        self._log = log
        self._now = now
        self._order_lines = OrderLines()
        self._running = True

    def _print(self, text: str) -> None:
        self._say(f"{self._now():%H:%M:%S}  {text}")

    async def run(self) -> None:
        """Until cancelled."""
        try:
            await asyncio.gather(
                self._resuming(self._orders.WatchOrders, order_pb2.WatchOrdersRequest, self._order_event,
                               what="order plane (orders)"),
                self._resuming(self._orders.WatchFills, order_pb2.WatchFillsRequest,
                               lambda event: self._print(fill_line(event.fill)), what="order plane (fills)"),
                self._follow_flags())
        finally:
            self._running = False

    def _order_event(self, event: order_pb2.WatchOrdersResponse) -> None:
        if (text := self._order_lines.line(event.order)) is not None:
            self._print(text)

    async def _resuming(self, watch, request_type, handle, *, what: str) -> None:
        """Follows a seq-numbered stream: live from now, and after a break from the last event seen."""
        last: list[int | None] = [None]

        async def session() -> bool:
            delivered = False
            async for event in watch(request_type(resume_after_seq=last[0])):
                last[0], delivered = event.seq, True
                handle(event)
            return delivered

        await follow_forever(session, what=what, address="", log=self._log, running=lambda: self._running)

    async def _follow_flags(self) -> None:
        seen: list[control_pb2.FlagSnapshot | None] = [None]

        async def session() -> bool:
            delivered = False
            async for event in self._control.WatchFlags(control_pb2.WatchFlagsRequest()):
                delivered = True
                snapshot, before = event.snapshot, seen[0]
                if before is not None and snapshot.version == before.version:
                    continue  # a heartbeat, or the same version again after a reconnect
                seen[0] = snapshot
                changes = flag_changes(before, snapshot)
                if changes:
                    self._print(flags_line(changes, snapshot, await self._audit(snapshot.version)))
            return delivered

        await follow_forever(session, what="control plane (flags)", address="", log=self._log,
                             running=lambda: self._running)

    async def _audit(self, version: int) -> list:
        """Who made the change and why (the audit of that version); nothing when it cannot be read."""
        try:
            reply = await self._control.ListAudit(control_pb2.ListAuditRequest(event="flag_change", limit=20),
                                                  timeout=2)
        except grpc.aio.AioRpcError:
            return []
        return [entry for entry in reply.entries if entry.version == version]
