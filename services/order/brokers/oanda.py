"""OANDA v20 as a Broker: orders over REST, identified at OANDA by our client id.

Every order carries `clientExtensions.id = client_order_id`, so OANDA can be asked "do you
have this order" (`GET /v3/accounts/{id}/orders/@{clientID}`). But OANDA refuses a second
order with that id only while the first one is *pending* (CLIENT_ORDER_ID_ALREADY_EXISTS:
"already assigned to another pending Order",
https://developer.oanda.com/rest-live-v20/transaction-df/#TransactionRejectReason): a
filled market order is not pending, so a resend after a timeout fills again. Hence:

- a POST is sent once. When its outcome is unknown (a timeout, a cut connection, HTTP 5xx,
  an unreadable reply) `submit` looks the order up by client id and adopts it when OANDA
  has it; otherwise it raises OutcomeUnknown, which nothing retries;
- only a connection that was never made (`VenueNotSent`) is RetryableBrokerError;
- fills come from tradeOpened / tradesClosed / tradeReduced (see oanda_wire); of the executions
  one ORDER_FILL gives, only the last is "filled" (the ones before it "partially_filled");
- an entry's stop-loss and trailing stop go with it as stopLossOnFill / trailingStopLossOnFill
  (client ids "<entry order id>.f:sl" / ".f:ts"): OANDA creates them on the trade the fill
  opens, fills them (ORDER_FILL with their clientOrderID) and cancels them when the trade closes
  (ORDER_CANCEL, LINKED_TRADE_CLOSED), all read like any order's; a trailing stop alone is refused;
- DAILY_FINANCING transactions become one BrokerFinancing per open trade (openTradeFinancings),
  in the account's currency (GET /summary), tied to the fill that opened the trade;
- prices and units are checked against the instrument's displayPrecision and
  tradeUnitsPrecision (GET /v3/accounts/{id}/instruments) before sending;
- every request spends the account's request budget (exits and cancels first).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

from services.common.clock import Clock, WallClock
from services.common.venues import (OandaSettings, VenueError, VenueHttp, VenueNotSent, VenueReply, decimal_field,
                                    field, json_of)
from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerFinancing, BrokerOrder,
                                         BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, OutcomeUnknown, RetryableBrokerError)
from services.order.brokers.budget import VenueBudget
from services.order.brokers.oanda_wire import (STATES, VENUE, ack_from_create, fills_of, financing_of, order_body,
                                               reject_reason, rules_of)
from services.order.brokers.precision import InstrumentRules

log = logging.getLogger(__name__)
_order_body = order_body  # the name older tests import


class OandaBroker:
    name = "oanda"
    # An entry's stop-loss and trailing stop are created by OANDA on the trade its fill opens.
    protects_on_fill = True
    trailing_stops = True  # on a trade only (trailingStopLossOnFill)

    def __init__(self, settings: OandaSettings, *, http: VenueHttp | None = None, clock: Clock | None = None,
                 budget: VenueBudget | None = None) -> None:
        self._settings = settings
        self._http = http or VenueHttp(VENUE, settings.rest_url, timeout_seconds=settings.timeout_seconds)
        self._clock = clock or WallClock()
        self.budget = budget or VenueBudget.shared(settings.requests_per_second, self._clock)
        self._account = f"/v3/accounts/{settings.account_id}"
        self._rules: dict[str, InstrumentRules] = {}

    async def close(self) -> None:
        await self._http.close()

    async def _send(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
                    priority: bool = False) -> VenueReply:
        await (self.budget.read(priority=priority) if method == "GET" else self.budget.write(priority=priority))
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

    async def rules(self, instrument: str) -> InstrumentRules:
        """The instrument's precision, asked once per instrument; nothing is sent while it is unknown."""
        if instrument not in self._rules:
            try:
                reply = await self._send("GET", "/instruments", params={"instruments": instrument})
                if reply.status != 200:
                    raise VenueError(VENUE, f"GET /instruments answered HTTP {reply.status}")
                found = field(VENUE, json_of(VENUE, reply, "GET /instruments"), "instruments")
            except VenueError as exc:
                raise RetryableBrokerError(f"{exc}; the order was not sent") from None
            if not found:
                raise BrokerRejected(f"{VENUE} does not trade {instrument} on this account", rule="venue.instrument")
            self._rules[instrument] = rules_of(found[0])
        return self._rules[instrument]

    # ---- submit -------------------------------------------------------------------------

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        body = {"order": order_body(order, await self.rules(order.instrument))}
        try:
            reply = await self._send("POST", "/orders", body=body, priority=order.is_exit)
        except VenueNotSent as exc:
            raise RetryableBrokerError(str(exc)) from None
        except VenueError as exc:
            return await self._resolve(order, str(exc))
        if reply.status >= 500:
            return await self._resolve(order, f"{VENUE}: POST /orders answered HTTP {reply.status}")
        if reply.status != 201:
            return await self._refused(order, reply)
        try:
            return ack_from_create(order, json_of(VENUE, reply, "POST /orders"))
        except VenueError as exc:
            return await self._resolve(order, f"{exc} (OANDA answered 201: it has the order)")

    async def _refused(self, order: BrokerOrder, reply: VenueReply) -> BrokerAck:
        try:
            data = json.loads(reply.text)
        except ValueError:
            data = {}
        reason = reject_reason(data) if isinstance(data, dict) else reply.text[:200]
        if reason == "CLIENT_ORDER_ID_ALREADY_EXISTS":  # OANDA has a pending order with this id: ours
            return await self._resolve(order, f"{VENUE}: the client id is already in use")
        raise BrokerRejected(f"{VENUE} rejected the order (HTTP {reply.status}): {reason}")

    async def _resolve(self, order: BrokerOrder, cause: str) -> BrokerAck:
        """In doubt: ask OANDA by client id; adopt the order if it has it, else OutcomeUnknown (never resend)."""
        log.warning("order outcome in doubt; looking it up by client id",
                    extra={"venue": VENUE, "client_order_id": order.client_order_id, "error": cause})
        try:
            ack = await self._lookup(order.client_order_id)
        except (VenueError, BrokerOverloaded) as exc:
            raise OutcomeUnknown(f"{cause}; the lookup by client id failed too: {exc}; the order is not sent "
                                 "again") from None
        if ack is None:
            raise OutcomeUnknown(f"{cause}; OANDA does not list the order yet; it is not sent again (OANDA refuses "
                                 "a reused client id only while the first order is pending)")
        return ack

    # ---- lookup and cancel --------------------------------------------------------------

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        try:
            return await self._lookup(client_order_id)
        except VenueError as exc:  # unreachable or unreadable: "don't know", never "no such order"
            raise OutcomeUnknown(str(exc)) from None

    async def _lookup(self, client_order_id: str) -> BrokerAck | None:
        reply = await self._send("GET", f"/orders/@{client_order_id}")
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise VenueError(VENUE, f"GET /orders/@{client_order_id} answered HTTP {reply.status}")
        venue_order = field(VENUE, json_of(VENUE, reply, "GET /orders/@{clientID}"), "order")
        state = STATES.get(field(VENUE, venue_order, "state"))
        if state is None:
            raise VenueError(VENUE, f"unknown order state {venue_order['state']!r} in field 'order.state'")
        fills: tuple[BrokerFill, ...] = ()
        if venue_order.get("fillingTransactionID"):
            tx_id = venue_order["fillingTransactionID"]
            tx = await self._send("GET", f"/transactions/{tx_id}")
            if tx.status != 200:
                raise VenueError(VENUE, f"GET /transactions/{tx_id} answered HTTP {tx.status}")
            fills = fills_of(client_order_id, field(VENUE, json_of(VENUE, tx, "GET /transactions"), "transaction"))
        return BrokerAck(client_order_id=client_order_id, broker_order_id=str(field(VENUE, venue_order, "id")),
                         state=state, filled_quantity=sum((f.quantity for f in fills), Decimal(0)), fills=fills)

    async def cancel(self, client_order_id: str) -> BrokerAck:
        try:
            reply = await self._send("PUT", f"/orders/@{client_order_id}/cancel", priority=True)
        except VenueError as exc:
            raise OutcomeUnknown(str(exc)) from None  # the gateway may repeat it: canceling twice is harmless
        if reply.status == 404:
            raise BrokerRejected(f"{VENUE} has no open order with client id {client_order_id!r} to cancel")
        if reply.status != 200:
            raise OutcomeUnknown(f"{VENUE}: PUT /orders/@{client_order_id}/cancel answered HTTP {reply.status}")
        try:
            tx = field(VENUE, json_of(VENUE, reply, "PUT /orders/@{clientID}/cancel"), "orderCancelTransaction")
            order_id = str(field(VENUE, tx, "orderID"))
        except VenueError as exc:
            raise OutcomeUnknown(str(exc)) from None
        return BrokerAck(client_order_id=client_order_id, broker_order_id=order_id,
                         state="canceled", reason=str(tx.get("reason", "")))

    # ---- reconciliation and executions --------------------------------------------------

    async def positions(self, account: str) -> list[BrokerPositionView]:
        try:
            reply = await self._send("GET", "/openPositions")
            if reply.status != 200:
                raise VenueError(VENUE, f"GET /openPositions answered HTTP {reply.status}")
            rows = field(VENUE, json_of(VENUE, reply, "GET /openPositions"), "positions")
            views = []
            for position in rows:
                long_units = decimal_field(VENUE, position, "long.units")
                short_units = decimal_field(VENUE, position, "short.units")  # negative or zero
                side = "long" if long_units != 0 else "short"
                average = position[side].get("averagePrice")
                views.append(BrokerPositionView(account=account, instrument=field(VENUE, position, "instrument"),
                                                quantity=long_units + short_units,
                                                average_price=Decimal(average) if average else None))
            return views
        except VenueError as exc:
            raise OutcomeUnknown(str(exc)) from None

    async def executions(self) -> AsyncIterator[BrokerExecution | BrokerFinancing]:
        """Fills and cancels of resting orders, and the daily financing, polled from the transaction
        log inside the request budget."""
        last_id: str | None = None
        currency = ""
        while True:
            try:
                if last_id is None:
                    summary = json_of(VENUE, await self._send("GET", "/summary"), "GET /summary")
                    currency = str(field(VENUE, summary, "account.currency"))  # financing comes in it
                    last_id = str(field(VENUE, summary, "lastTransactionID"))
                reply = await self._send("GET", "/transactions/sinceid", params={"id": last_id})
                data = json_of(VENUE, reply, "GET /transactions/sinceid")
                for tx in field(VENUE, data, "transactions"):
                    for execution in _executions(tx, currency):
                        yield execution
                last_id = str(field(VENUE, data, "lastTransactionID"))
            except (VenueError, BrokerOverloaded, BrokerRejected) as exc:
                log.warning("could not poll OANDA transactions; trying again", extra={"error": str(exc)})
            await self._clock.sleep(self._settings.poll_seconds)


def _executions(tx: dict, currency: str) -> list[BrokerExecution | BrokerFinancing]:
    kind, client_id = tx.get("type"), tx.get("clientOrderID")
    if kind == "DAILY_FINANCING":
        return financing_of(tx, currency)
    if not client_id:
        return []  # not one of ours (an order placed by hand, a financing entry, ...)
    order_id = str(tx.get("orderID", ""))
    if kind == "ORDER_FILL":
        # One ORDER_FILL is the order's whole fill, one fill per trade it closed, reduced or opened.
        # Only the last says "filled": the order plane finishes an order on that word (an order bound
        # to a trade fills less than it was recorded for), and the fills after it would otherwise
        # land on a finished order.
        fills = fills_of(client_id, tx)
        return [BrokerExecution(client_order_id=client_id, broker_order_id=order_id,
                                state="filled" if i == len(fills) - 1 else "partially_filled", fill=fill)
                for i, fill in enumerate(fills)]
    if kind == "ORDER_CANCEL":
        return [BrokerExecution(client_order_id=client_id, broker_order_id=order_id, state="canceled",
                                reason=f"OANDA canceled the order: {tx.get('reason', '')}")]
    return []
