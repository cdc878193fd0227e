"""GMO Coin as a Broker, over its private REST API (https://api.coin.z.com/docs/).

GMO has no client order id: `POST /v1/order` returns GMO's orderId and a second POST is a
second order. So this adapter
- writes what it is about to send to a durable record (gmo_orders) before the POST, and
  GMO's orderId after it, so a restart still knows every order in flight;
- never POSTs twice for one client id: a timeout, a cut connection, an unreadable reply, or
  busy/maintenance (ERR-626, ERR-5201/5202) answered to the POST is resolved by searching
  the venue (gmo_search), and stays OutcomeUnknown while it cannot be resolved;
- once GMO gave an orderId the order is accepted, whatever the follow-up reads answer: a
  busy GET /v1/orders after a successful POST gives state "new", never a rejection;
- checks size and price against /public/v1/symbols (sizeStep, tickSize, min/max) and passes
  the intent's time in force (FAK/FAS/FOK);
- closes positions for exits on margin symbols: /v1/closeOrder with the position when one
  of the opposite side covers the size, else /v1/closeBulkOrder (one order either way);
- reports positions per side (GMO holds a long and a short of one symbol side by side);
- follows its unfinished orders by polling inside the GET budget (20/s at Tier 1), and an
  ended order on until its executions are all listed (they can lag its status; resting.TradesLag).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

from services.common.clock import Clock, WallClock
from services.common.venues import GmoSettings, VenueError, VenueNotSent, decimal_field, field
from services.common.vocabulary import OrderType
from services.order.brokers.base import (FINISHED_STATES, BrokerAck, BrokerExecution, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, OutcomeUnknown, RetryableBrokerError)
from services.order.brokers.budget import VenueBudget
from services.order.brokers.gmo_orders import MemorySentOrders, SentOrder, SentOrders
from services.order.brokers.gmo_rest import VENUE, GmoRest, GmoUnavailable, sign
from services.order.brokers.gmo_search import find_sent, orders_by_id
from services.order.brokers.gmo_wire import ack_of, fills_of, is_margin, rules_of, time_in_force, venue_state
from services.order.brokers.precision import InstrumentRules
from services.order.brokers.resting import FillTracker, TradesLag

log = logging.getLogger(__name__)
__all__ = ["GmoBroker", "sign"]
_DOUBT = (VenueError, BrokerOverloaded)  # GmoUnavailable is a VenueError


_EXECUTION = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP: "STOP"}


class GmoBroker:
    name = "gmo"

    def __init__(self, settings: GmoSettings, *, sent: SentOrders | None = None, clock: Clock | None = None,
                 budget: VenueBudget | None = None, rest: GmoRest | None = None) -> None:
        self._settings = settings
        self._clock = clock or WallClock()
        self.budget = budget or VenueBudget.split(settings.get_per_second, settings.post_per_second, self._clock)
        self._rest = rest or GmoRest(settings, self._clock, self.budget)
        self.sent = sent if sent is not None else MemorySentOrders()
        self._rules: dict[str, InstrumentRules] = {}
        self._tracker = FillTracker()
        self._executed: dict[str, Decimal] = {}  # size of the executions listed so far, per client id
        self._lag = TradesLag(self._clock, VENUE)  # ended orders whose executions are not all listed yet
        # GMO lists an accepted order within moments; after this long, "not listed" means "never created".
        self.settle = timedelta(seconds=max(30.0, 3 * settings.timeout_seconds))

    async def close(self) -> None:
        await self._rest.close()

    async def rules(self, symbol: str) -> InstrumentRules:
        if symbol not in self._rules:
            try:
                rows = await self._rest.public("/v1/symbols")
            except (VenueError, BrokerRejected, BrokerOverloaded) as exc:
                raise RetryableBrokerError(f"{exc}; the order was not sent") from None
            self._rules.update({r["symbol"]: rules_of(r) for r in rows or []})
            if symbol not in self._rules:
                raise BrokerRejected(f"{VENUE} does not trade {symbol}", rule="venue.instrument")
        return self._rules[symbol]

    # ---- submit -------------------------------------------------------------------------

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        known = await self.sent.get(order.client_order_id)
        if known is not None:  # sent before (a retry, a restart): never POST again
            return await self._resolve(known, "this client id was sent before")
        endpoint, body, position_id = await self._plan(order)
        draft = SentOrder(client_order_id=order.client_order_id, symbol=order.instrument, side=body["side"],
                          execution_type=body["executionType"], size=order.quantity,
                          price={OrderType.LIMIT: order.limit_price, OrderType.STOP: order.stop_price}.get(
                              order.order_type),
                          endpoint=endpoint, position_id=position_id, sent_at=self._clock.now())
        sent = await self.sent.record_sending(draft)
        if sent != draft:  # another caller recorded this client id first: theirs is the order
            return await self._resolve(sent, "this client id was sent before")
        try:
            data = await self._rest.private("POST", endpoint, body=body, priority=order.is_exit)
        except (BrokerRejected, BrokerOverloaded, VenueNotSent) as exc:
            await self.sent.forget(order.client_order_id)  # GMO answered no, or never saw it
            if isinstance(exc, VenueNotSent):
                raise RetryableBrokerError(str(exc)) from None
            raise
        except VenueError as exc:
            return await self._resolve(sent, str(exc))
        if not isinstance(data, (str, int)) or not str(data).isdigit():
            return await self._resolve(sent, f"{VENUE}: the reply to POST {endpoint} has no orderId in 'data'")
        order_id = str(data)
        await self.sent.record_order_id(order.client_order_id, order_id)
        try:
            return self._reported(await self._ack(order.client_order_id, order_id, priority=order.is_exit))
        except _DOUBT as exc:  # GMO gave an orderId: the order is live; its fills come through executions()
            log.warning("GMO accepted the order but the follow-up read failed; reporting it as new",
                        extra={"client_order_id": order.client_order_id, "order_id": order_id, "error": str(exc)})
            return BrokerAck(client_order_id=order.client_order_id, broker_order_id=order_id, state="new")

    async def _plan(self, order: BrokerOrder) -> tuple[str, dict, int | None]:
        """Which endpoint, with which body: an exit on a margin symbol closes positions instead of opening one."""
        if order.order_type not in _EXECUTION:
            raise BrokerRejected(f"{VENUE} has no {order.order_type} orders (executionType is MARKET, LIMIT or STOP); "
                                 "the order was not sent", rule="venue.order_type")
        rules = await self.rules(order.instrument)
        # GMO's STOP rests until the market trades through `price`, then executes at market: a
        # protective stop held at the venue (docs/planes.md, "Protection at the venue").
        body = {"symbol": order.instrument, "side": order.side.upper(), "executionType": _EXECUTION[order.order_type]}
        tif = time_in_force(order.order_type, order.time_in_force)
        if tif:
            body["timeInForce"] = tif
        price = {OrderType.LIMIT: order.limit_price, OrderType.STOP: order.stop_price}.get(order.order_type)
        if order.order_type != OrderType.MARKET:
            if price is None:
                raise BrokerRejected(f"{VENUE}: a {order.order_type} order needs a price", rule="venue.order_type")
            body["price"] = rules.price(price)
        size = rules.size(order.quantity)
        if not (order.is_exit and is_margin(order.instrument)):
            return "/v1/order", {**body, "size": size}, None
        held = "BUY" if body["side"] == "SELL" else "SELL"
        try:
            data = await self._rest.private("GET", "/v1/openPositions", params={"symbol": order.instrument,
                                                                                 "count": "100"}, priority=True)
        except (VenueError, BrokerRejected, BrokerOverloaded) as exc:
            raise RetryableBrokerError(f"{exc}; the exit was not sent") from None
        free = [(decimal_field(VENUE, p, "size") - Decimal(str(p.get("orderdSize") or 0)), int(p["positionId"]))
                for p in (data or {}).get("list", []) if p.get("side") == held]
        for available, position_id in free:  # oldest first, as GMO lists them
            if available >= order.quantity:
                return "/v1/closeOrder", {**body, "settlePosition": [{"positionId": position_id, "size": size}]}, \
                    position_id
        total = sum((a for a, _ in free), Decimal(0))
        if total < order.quantity:
            raise BrokerRejected(f"exit {order.side} {size} {order.instrument}: GMO holds only {total} on the "
                                 f"{held} side free to close; the exit was not sent", rule="venue.close_exceeds_position")
        return "/v1/closeBulkOrder", {**body, "size": size}, None

    async def _resolve(self, sent: SentOrder, cause: str) -> BrokerAck:
        """An order sent before: by its orderId when known, else searched for; OutcomeUnknown when undecidable."""
        try:
            ack = await self._find(sent)
        except _DOUBT as exc:
            raise OutcomeUnknown(f"{cause}; asking GMO failed: {exc}; the order is never posted twice") from None
        if ack is None:
            raise OutcomeUnknown(f"{cause}; GMO shows no such order; it is not posted again")
        return self._reported(ack)

    def _reported(self, ack: BrokerAck) -> BrokerAck:
        """The engine gets this ack directly: the follower need not report its fills again."""
        self._tracker.saw(ack)
        self._executed[ack.client_order_id] = ack.filled_quantity
        return ack

    async def _find(self, sent: SentOrder) -> BrokerAck | None:
        order_id = sent.order_id
        if order_id is None:
            order_id = await find_sent(self._rest, sent, await self.sent.claimed(sent.symbol), self._clock.now(),
                                       self.settle)
            if order_id is None:
                return None
            await self.sent.record_order_id(sent.client_order_id, order_id)
            log.info("GMO order in doubt found at the venue",
                     extra={"client_order_id": sent.client_order_id, "order_id": order_id})
        return await self._ack(sent.client_order_id, order_id)

    async def _ack(self, cid: str, order_id: str, *, priority: bool = False) -> BrokerAck:
        """The order and its executions, read in full before anything is returned."""
        rows = await orders_by_id(self._rest, [order_id])
        if not rows:
            raise VenueError(VENUE, f"GET /v1/orders has no order {order_id}")
        fills = ()
        if decimal_field(VENUE, rows[0], "executedSize") > 0:
            data = await self._rest.private("GET", "/v1/executions", params={"orderId": order_id}, priority=priority)
            fills = fills_of(cid, field(VENUE, data, "list"))
        return ack_of(cid, rows[0], fills)

    # ---- lookup, cancel, positions --------------------------------------------------------

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        sent = await self.sent.get(client_order_id)
        if sent is None:
            return None  # the record is written before every POST: no record, never sent
        try:
            ack = await self._find(sent)
        except _DOUBT as exc:
            raise OutcomeUnknown(f"{VENUE}: cannot tell whether order {client_order_id!r} exists: {exc}") from None
        return None if ack is None else self._reported(ack)

    async def cancel(self, client_order_id: str) -> BrokerAck:
        sent = await self.sent.get(client_order_id)
        if sent is None:
            raise BrokerRejected(f"{VENUE}: order {client_order_id!r} was never sent, there is nothing to cancel")
        ack = await self._resolve(sent, "cancel")
        try:
            await self._rest.private("POST", "/v1/cancelOrder", body={"orderId": int(ack.broker_order_id)},
                                     priority=True)
            return self._reported(await self._ack(client_order_id, ack.broker_order_id, priority=True))
        except _DOUBT as exc:
            raise OutcomeUnknown(str(exc)) from None

    async def positions(self, account: str) -> list[BrokerPositionView]:
        try:
            data = await self._rest.private("GET", "/v1/positionSummary")
            views = []
            for row in field(VENUE, data, "list"):
                quantity = decimal_field(VENUE, row, "sumPositionQuantity")
                long = field(VENUE, row, "side") == "BUY"
                views.append(BrokerPositionView(
                    account=account, instrument=field(VENUE, row, "symbol"), quantity=quantity if long else -quantity,
                    average_price=decimal_field(VENUE, row, "averagePositionRate") if quantity else None,
                    side="long" if long else "short"))
        except VenueError as exc:
            raise OutcomeUnknown(str(exc)) from None
        return sorted(views, key=lambda v: (v.instrument, v.side))

    # ---- resting orders -------------------------------------------------------------------

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        """Fills, cancels and expiries of every unfinished order in the record, polled inside the GET budget."""
        while True:
            try:
                for execution in await self.poll():
                    yield execution
            except (VenueError, BrokerRejected, BrokerOverloaded, OutcomeUnknown) as exc:
                log.warning("could not poll GMO orders; trying again", extra={"error": str(exc)})
            await self._clock.sleep(self._settings.poll_seconds)

    async def poll(self) -> list[BrokerExecution]:
        """One pass over the unfinished orders: ten orders per GET /v1/orders, executions only where they moved."""
        unfinished = await self.sent.unfinished()
        for sent in [s for s in unfinished if s.order_id is None]:
            try:
                found = await self._find(sent)  # in doubt: searched again every pass until decided
            except OutcomeUnknown:
                continue
            if found is None:
                await self.sent.finish(sent.client_order_id)  # proven never created: nothing to follow
        unfinished = [s for s in await self.sent.unfinished() if s.order_id is not None]
        rows = {str(r["orderId"]): r for r in await orders_by_id(self._rest, [s.order_id for s in unfinished])}
        news: list[BrokerExecution] = []
        for sent in unfinished:
            row = rows.get(str(sent.order_id))
            if row is None:
                continue
            cid, executed = sent.client_order_id, decimal_field(VENUE, row, "executedSize")
            fills = ()
            if executed > self._executed.get(cid, Decimal(0)):  # moved, or its executions were not all listed
                data = await self._rest.private("GET", "/v1/executions", params={"orderId": str(sent.order_id)})
                fills = fills_of(cid, field(VENUE, data, "list"))
                self._executed[cid] = sum((f.quantity for f in fills), Decimal(0))
            ack = ack_of(cid, row, fills, listed=self._executed.get(cid, Decimal(0)))
            news += self._tracker.news(ack)
            # Finished with every execution listed; or ended at GMO with executions missing for too long: the
            # order plane still holds that one open, and reconciliation looks it up by its orderId.
            if ack.state in FINISHED_STATES or self._lag.waited_out(
                    ack, finished_at_venue=venue_state(row) in FINISHED_STATES, filled=executed):
                await self.sent.finish(cid)
                self._executed.pop(cid, None)
        return news
