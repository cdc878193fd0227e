"""OANDA v20 as a Broker: orders over REST, identified at OANDA by our client id.

Every order carries `clientExtensions.id = client_order_id`, so OANDA can be asked
"do you have this order" (`GET /v3/accounts/{id}/orders/@{clientID}`) and a second POST
with the same id is refused (CLIENT_ORDER_ID_ALREADY_EXISTS) instead of trading twice.
That makes a resend safe: after a timeout, a cut connection, a 5xx or an unreadable reply,
`submit` first looks the order up by client id and adopts it if OANDA has it; only when
OANDA says it has no such order does it raise RetryableBrokerError, and the BrokerGateway
sends again. 429 becomes BrokerOverloaded, which the gateway answers by slowing down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

from services.common.venues import (MalformedVenueReply, OandaSettings, VenueError, VenueHttp, VenueReply,
                                    decimal_field, field, json_of, rfc3339_time)
from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, RetryableBrokerError)

log = logging.getLogger(__name__)
VENUE = "OANDA"
_ORDER_TYPES = {"market": "MARKET", "limit": "LIMIT", "stop": "STOP"}
_STATES = {"PENDING": "new", "TRIGGERED": "new", "FILLED": "filled", "CANCELLED": "canceled"}


class OandaBroker:
    name = "oanda"

    def __init__(self, settings: OandaSettings, *, http: VenueHttp | None = None) -> None:
        self._settings = settings
        self._http = http or VenueHttp(VENUE, settings.rest_url, timeout_seconds=settings.timeout_seconds)
        self._account = f"/v3/accounts/{settings.account_id}"

    async def close(self) -> None:
        await self._http.close()

    async def _send(self, method: str, path: str, *, body: dict | None = None,
                    params: dict | None = None) -> VenueReply:
        headers = {"Authorization": f"Bearer {self._settings.token.reveal()}", "Content-Type": "application/json",
                   "Accept-Datetime-Format": "RFC3339"}
        reply = await self._http.request(method, self._account + path, params=params, headers=headers,
                                         body=None if body is None else json.dumps(body))
        if reply.status == 429:
            raise BrokerOverloaded(f"{VENUE}: {method} {path} answered 429 (rate limit)", reply.retry_after())
        if reply.status == 401:
            raise BrokerRejected(f"{VENUE} refused the credentials (HTTP 401); check OANDA_API_TOKEN and "
                                 "QUANTMESH_VENUE_ENV (a practice token does not work on live, nor the reverse)")
        return reply

    # ---- submit -------------------------------------------------------------------------

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        body = {"order": _order_body(order)}
        try:
            reply = await self._send("POST", "/orders", body=body)
            if reply.status >= 500:
                raise VenueError(VENUE, f"POST /orders answered HTTP {reply.status}")
            data = json_of(VENUE, reply, "POST /orders")
            if reply.status == 400 and isinstance(data, dict):
                reason = _reject_reason(data)
                if reason == "CLIENT_ORDER_ID_ALREADY_EXISTS":  # a resend of an order OANDA already has
                    ack = await self._lookup(order.client_order_id)
                    if ack is not None:
                        return ack
                raise BrokerRejected(f"{VENUE} rejected the order: {reason}")
            if reply.status != 201:
                raise BrokerRejected(f"{VENUE} refused the order (HTTP {reply.status}): {reply.text[:200]}")
            return _ack_from_create(order, data)
        except VenueError as exc:
            # In doubt: OANDA may have the order. Ask by client id before anything is sent again.
            log.warning("order outcome in doubt; looking it up by client id",
                        extra={"venue": VENUE, "client_order_id": order.client_order_id, "error": str(exc)})
            try:
                ack = await self._lookup(order.client_order_id)
            except VenueError as lookup_error:
                raise RetryableBrokerError(f"{exc}; the lookup by client id failed too: {lookup_error}") from None
            if ack is not None:
                return ack
            raise RetryableBrokerError(f"{exc}; OANDA has no order with this client id, safe to send again") from None

    # ---- lookup and cancel --------------------------------------------------------------

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        try:
            return await self._lookup(client_order_id)
        except VenueError as exc:  # unreachable or unreadable: "don't know", never "no such order"
            raise RetryableBrokerError(str(exc)) from None

    async def _lookup(self, client_order_id: str) -> BrokerAck | None:
        reply = await self._send("GET", f"/orders/@{client_order_id}")
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise VenueError(VENUE, f"GET /orders/@{client_order_id} answered HTTP {reply.status}")
        venue_order = field(VENUE, json_of(VENUE, reply, "GET /orders/@{clientID}"), "order")
        state = _STATES.get(field(VENUE, venue_order, "state"))
        if state is None:
            raise MalformedVenueReply(VENUE, f"unknown order state {venue_order['state']!r}", field="order.state")
        fills: tuple[BrokerFill, ...] = ()
        if state == "filled":
            tx_id = field(VENUE, venue_order, "fillingTransactionID")
            tx = await self._send("GET", f"/transactions/{tx_id}")
            if tx.status != 200:
                raise VenueError(VENUE, f"GET /transactions/{tx_id} answered HTTP {tx.status}")
            fills = (_fill(client_order_id, field(VENUE, json_of(VENUE, tx, "GET /transactions"), "transaction")),)
        return BrokerAck(client_order_id=client_order_id, broker_order_id=str(field(VENUE, venue_order, "id")),
                         state=state, filled_quantity=sum((f.quantity for f in fills), Decimal(0)), fills=fills)

    async def cancel(self, client_order_id: str) -> BrokerAck:
        try:
            reply = await self._send("PUT", f"/orders/@{client_order_id}/cancel")
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None  # a cancel is idempotent: canceling twice is harmless
        if reply.status == 404:
            raise BrokerRejected(f"{VENUE} has no open order with client id {client_order_id!r} to cancel")
        if reply.status != 200:
            raise RetryableBrokerError(f"{VENUE}: PUT /orders/@{client_order_id}/cancel answered HTTP {reply.status}")
        try:
            tx = field(VENUE, json_of(VENUE, reply, "PUT /orders/@{clientID}/cancel"), "orderCancelTransaction")
            order_id = str(field(VENUE, tx, "orderID"))
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None
        return BrokerAck(client_order_id=client_order_id, broker_order_id=order_id,
                         state="canceled", reason=str(tx.get("reason", "")))

    # ---- reconciliation and executions --------------------------------------------------

    async def positions(self, account: str) -> list[BrokerPositionView]:
        try:
            return await self._positions(account)
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None

    async def _positions(self, account: str) -> list[BrokerPositionView]:
        reply = await self._send("GET", "/openPositions")
        if reply.status != 200:
            raise VenueError(VENUE, f"GET /openPositions answered HTTP {reply.status}")
        views = []
        for position in field(VENUE, json_of(VENUE, reply, "GET /openPositions"), "positions"):
            long_units = decimal_field(VENUE, position, "long.units")
            short_units = decimal_field(VENUE, position, "short.units")  # negative or zero
            side = "long" if long_units != 0 else "short"
            average = position[side].get("averagePrice")
            views.append(BrokerPositionView(account=account, instrument=field(VENUE, position, "instrument"),
                                            quantity=long_units + short_units,
                                            average_price=Decimal(average) if average else None))
        return views

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        """Fills and cancels of resting orders, polled from the transaction log."""
        last_id: str | None = None
        while True:
            try:
                if last_id is None:
                    reply = await self._send("GET", "/summary")
                    last_id = str(field(VENUE, json_of(VENUE, reply, "GET /summary"), "lastTransactionID"))
                reply = await self._send("GET", "/transactions/sinceid", params={"id": last_id})
                data = json_of(VENUE, reply, "GET /transactions/sinceid")
                for tx in field(VENUE, data, "transactions"):
                    execution = _execution(tx)
                    if execution is not None:
                        yield execution
                last_id = str(field(VENUE, data, "lastTransactionID"))
            except (VenueError, BrokerOverloaded, BrokerRejected) as exc:
                log.warning("could not poll OANDA transactions; trying again", extra={"error": str(exc)})
            await asyncio.sleep(self._settings.poll_seconds)


def _order_body(order: BrokerOrder) -> dict:
    units = order.quantity if order.side == "buy" else -order.quantity
    body = {"type": _ORDER_TYPES[order.order_type], "instrument": order.instrument, "units": str(units),
            "positionFill": "DEFAULT", "clientExtensions": {"id": order.client_order_id}}
    if order.order_type == "market":
        body["timeInForce"] = "FOK"
    else:
        price = order.limit_price if order.order_type == "limit" else order.stop_price
        body["price"] = str(price)
        body["timeInForce"] = "GTC" if order.time_in_force.upper() not in ("GTC", "GFD", "FOK", "IOC") \
            else order.time_in_force.upper()
    return body


def _reject_reason(data: dict) -> str:
    reject = data.get("orderRejectTransaction") or {}
    return str(reject.get("rejectReason") or data.get("errorCode") or data.get("errorMessage") or "unknown reason")


def _fill(client_order_id: str, tx: dict) -> BrokerFill:
    units = decimal_field(VENUE, tx, "units")
    commission = abs(Decimal(str(tx.get("commission", "0"))))
    return BrokerFill(broker_fill_id=f"oanda-{field(VENUE, tx, 'id')}", client_order_id=client_order_id,
                      quantity=abs(units), price=decimal_field(VENUE, tx, "price"), commission=commission,
                      time=rfc3339_time(str(field(VENUE, tx, "time"))))


def _ack_from_create(order: BrokerOrder, data: dict) -> BrokerAck:
    """Reads the whole reply before returning anything, so a half-readable reply records no fill."""
    created = field(VENUE, data, "orderCreateTransaction")
    order_id = str(field(VENUE, created, "id"))
    fills: tuple[BrokerFill, ...] = ()
    state, reason = "new", ""
    if data.get("orderFillTransaction") is not None:
        fill = _fill(order.client_order_id, data["orderFillTransaction"])
        fills = (fill,)
        state = "filled" if fill.quantity >= order.quantity else "partially_filled"
    if data.get("orderCancelTransaction") is not None:
        reason = f"OANDA canceled the order: {data['orderCancelTransaction'].get('reason', 'no reason given')}"
        # A market order canceled at once never worked: to the trader it is a rejection.
        state = "rejected" if not fills and order.order_type == "market" else "canceled"
    return BrokerAck(client_order_id=order.client_order_id, broker_order_id=order_id, state=state,
                     filled_quantity=sum((f.quantity for f in fills), Decimal(0)), reason=reason, fills=fills)


def _execution(tx: dict) -> BrokerExecution | None:
    kind, client_id = tx.get("type"), tx.get("clientOrderID")
    if not client_id:
        return None  # not one of ours (an order placed by hand, a financing entry, ...)
    if kind == "ORDER_FILL":
        fill = _fill(client_id, tx)
        return BrokerExecution(client_order_id=client_id, broker_order_id=str(tx.get("orderID", "")),
                               state="filled", fill=fill)
    if kind == "ORDER_CANCEL":
        return BrokerExecution(client_order_id=client_id, broker_order_id=str(tx.get("orderID", "")),
                               state="canceled", reason=f"OANDA canceled the order: {tx.get('reason', '')}")
    return None
