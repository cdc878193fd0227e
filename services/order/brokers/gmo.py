"""GMO Coin as a Broker, over its private REST API (https://api.coin.z.com/private).

GMO Coin has no client order id: `POST /v1/order` returns GMO's orderId and a second POST
is a second order. So a POST is never sent twice for one client id. This adapter keeps the
map client id -> orderId (in memory: after a restart the order plane's recovery finds no map,
and `lookup` answers None), and when a POST times out or its reply is lost it searches the
venue for the order instead of resending: the active orders and the latest executions of the
symbol, for one order with the same side, type, size (and price) placed since just before the
POST, not already claimed by another client id. Found: adopted. Not found: RetryableBrokerError,
and the next attempt searches again instead of posting; `lookup` of such an order raises, which
leaves it SUBMITTED for an operator rather than guessing.

Every private request is signed: API-SIGN = hex HMAC-SHA256(secret, timestamp + method + path + body).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from services.common.venues import (GmoSettings, MalformedVenueReply, VenueError, VenueHttp, decimal_field, field,
                                    json_of, rfc3339_time)
from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, RetryableBrokerError)

log = logging.getLogger(__name__)
VENUE = "GMO Coin"
_RATE_LIMITED = ("ERR-5003",)  # "Requests are too many"
_STATES = {"WAITING": "new", "ORDERED": "new", "MODIFYING": "new", "CANCELLING": "new", "EXECUTED": "filled",
           "CANCELED": "canceled", "EXPIRED": "expired"}
_SEARCH_SKEW = timedelta(seconds=5)  # clocks differ: an order GMO stamped a little before our POST still counts


def sign(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    return hmac.new(secret.encode(), (timestamp + method + path + body).encode(), hashlib.sha256).hexdigest()


@dataclass(slots=True)
class _InDoubt:
    order: BrokerOrder
    sent_at: datetime


class GmoBroker:
    name = "gmo"

    def __init__(self, settings: GmoSettings, *, http: VenueHttp | None = None) -> None:
        self._settings = settings
        self._http = http or VenueHttp(VENUE, settings.rest_url + "/private", timeout_seconds=settings.timeout_seconds)
        self.order_ids: dict[str, str] = {}        # client id -> GMO orderId
        self._in_doubt: dict[str, _InDoubt] = {}   # client ids whose POST has no known outcome

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, method: str, path: str, *, params: dict | None = None, body: dict | None = None):
        text = "" if body is None else json.dumps(body)
        stamp = str(int(time.time() * 1000))
        headers = {"API-KEY": self._settings.api_key.reveal(), "API-TIMESTAMP": stamp,
                   "API-SIGN": sign(self._settings.api_secret.reveal(), stamp, method, path, text)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        reply = await self._http.request(method, path, params=params, body=text if body is not None else None,
                                         headers=headers)
        if reply.status == 429:
            detail = reply.text[:200] if reply.text.lstrip().startswith("{") else ""
            raise BrokerOverloaded(f"{VENUE}: {method} {path} answered 429 (rate limit) {detail}".rstrip(),
                                   reply.retry_after())
        if reply.status >= 500:
            raise VenueError(VENUE, f"{method} {path} answered HTTP {reply.status}")
        data = json_of(VENUE, reply, f"{method} {path}")
        status = field(VENUE, data, "status")
        if status != 0:
            messages = data.get("messages") or [{}]
            code = str(messages[0].get("message_code", "?"))
            text = f"{code} {messages[0].get('message_string', '')}".strip()
            if code in _RATE_LIMITED:
                raise BrokerOverloaded(f"{VENUE}: {method} {path} refused: {text}", reply.retry_after())
            raise BrokerRejected(f"{VENUE} refused {method} {path}: {text}")
        return data.get("data")

    # ---- submit -------------------------------------------------------------------------

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        cid = order.client_order_id
        if cid in self.order_ids:  # idempotent here, since GMO is not
            return await self._ack(cid, self.order_ids[cid])
        if cid in self._in_doubt:
            return await self._resolve(cid)
        if order.order_type == "stop":
            raise BrokerRejected(f"{VENUE}: this adapter sends market and limit orders only (stop is not mapped)")
        body = {"symbol": order.instrument, "side": order.side.upper(),
                "executionType": "MARKET" if order.order_type == "market" else "LIMIT", "size": str(order.quantity)}
        if order.order_type == "limit":
            body["price"] = str(order.limit_price)
        self._in_doubt[cid] = _InDoubt(order, datetime.now(timezone.utc))
        try:
            data = await self._call("POST", "/v1/order", body=body)
        except (BrokerRejected, BrokerOverloaded):
            del self._in_doubt[cid]  # GMO answered: it did not take the order
            raise
        except VenueError as exc:
            log.warning("GMO order outcome in doubt; searching the venue instead of sending again",
                        extra={"venue": VENUE, "client_order_id": cid, "error": str(exc)})
            return await self._resolve(cid, cause=str(exc))
        if not isinstance(data, (str, int)) or not str(data).isdigit():
            return await self._resolve(cid, cause=f"{VENUE}: the reply to POST /v1/order has no orderId in 'data'")
        del self._in_doubt[cid]
        self.order_ids[cid] = str(data)
        return await self._ack(cid, str(data))

    async def _resolve(self, cid: str, cause: str = "") -> BrokerAck:
        try:
            ack = await self._search(cid)
        except VenueError as exc:
            raise RetryableBrokerError(f"{cause or 'order outcome unknown'}; searching GMO failed: {exc}") from None
        if ack is None:
            raise RetryableBrokerError(f"{cause or 'order outcome unknown'}; GMO shows no matching order yet "
                                       "(the order is never posted twice)")
        return ack

    async def _search(self, cid: str) -> BrokerAck | None:
        doubt = self._in_doubt[cid]
        order, since = doubt.order, doubt.sent_at - _SEARCH_SKEW
        claimed = set(self.order_ids.values())
        execution_type = "MARKET" if order.order_type == "market" else "LIMIT"
        candidates: list[str] = []
        active = await self._call("GET", "/v1/activeOrders", params={"symbol": order.instrument})
        for row in (active or {}).get("list", []):
            if (row.get("side") == order.side.upper() and row.get("executionType") == execution_type
                    and Decimal(str(row.get("size"))) == order.quantity
                    and (order.limit_price is None or Decimal(str(row.get("price"))) == order.limit_price)
                    and rfc3339_time(row.get("timestamp")) >= since):
                candidates.append(str(row["orderId"]))
        executed = await self._call("GET", "/v1/latestExecutions", params={"symbol": order.instrument})
        sizes: dict[str, Decimal] = {}
        for row in (executed or {}).get("list", []):
            if row.get("side") == order.side.upper() and rfc3339_time(row.get("timestamp")) >= since:
                sizes[str(row["orderId"])] = sizes.get(str(row["orderId"]), Decimal(0)) + Decimal(str(row["size"]))
        candidates += [oid for oid, size in sizes.items() if size == order.quantity and oid not in candidates]
        candidates = [oid for oid in candidates if oid not in claimed]
        if len(candidates) != 1:
            if len(candidates) > 1:
                log.error("several GMO orders match an order in doubt; an operator must decide",
                          extra={"client_order_id": cid, "order_ids": candidates})
            return None
        del self._in_doubt[cid]
        self.order_ids[cid] = candidates[0]
        log.info("GMO order in doubt found at the venue", extra={"client_order_id": cid, "order_id": candidates[0]})
        return await self._ack(cid, candidates[0])

    async def _ack(self, cid: str, order_id: str) -> BrokerAck:
        """The order and its executions, read in full before anything is returned."""
        try:
            orders = await self._call("GET", "/v1/orders", params={"orderId": order_id})
            rows = field(VENUE, orders, "list")
            if not rows:
                raise MalformedVenueReply(VENUE, f"GET /v1/orders has no order {order_id}", field="list")
            row = rows[0]
            state = _STATES.get(field(VENUE, row, "status"))
            if state is None:
                raise MalformedVenueReply(VENUE, f"unknown order status {row['status']!r}", field="status")
            fills = await self._fills(cid, order_id) if decimal_field(VENUE, row, "executedSize") > 0 else ()
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None
        filled = sum((f.quantity for f in fills), Decimal(0))
        if state == "new" and filled > 0:
            state = "partially_filled"
        return BrokerAck(client_order_id=cid, broker_order_id=order_id, state=state, filled_quantity=filled,
                         fills=fills)

    async def _fills(self, cid: str, order_id: str) -> tuple[BrokerFill, ...]:
        data = await self._call("GET", "/v1/executions", params={"orderId": order_id})
        return tuple(BrokerFill(broker_fill_id=f"gmo-{field(VENUE, row, 'executionId')}", client_order_id=cid,
                                quantity=decimal_field(VENUE, row, "size"), price=decimal_field(VENUE, row, "price"),
                                commission=decimal_field(VENUE, row, "fee"),
                                time=rfc3339_time(field(VENUE, row, "timestamp")))
                     for row in field(VENUE, data, "list"))

    # ---- lookup, cancel, positions --------------------------------------------------------

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        if client_order_id in self.order_ids:
            return await self._ack(client_order_id, self.order_ids[client_order_id])
        if client_order_id in self._in_doubt:
            return await self._resolve(client_order_id)  # raises when still unknown: never "no such order"
        return None

    async def cancel(self, client_order_id: str) -> BrokerAck:
        order_id = self.order_ids.get(client_order_id)
        if order_id is None:
            raise BrokerRejected(f"{VENUE}: no GMO order id is known for client id {client_order_id!r}")
        try:
            await self._call("POST", "/v1/cancelOrder", body={"orderId": int(order_id)})
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None
        return await self._ack(client_order_id, order_id)

    async def positions(self, account: str) -> list[BrokerPositionView]:
        try:
            data = await self._call("GET", "/v1/positionSummary")
        except VenueError as exc:
            raise RetryableBrokerError(str(exc)) from None
        totals: dict[str, tuple[Decimal, Decimal | None]] = {}
        for row in field(VENUE, data, "list"):
            quantity = decimal_field(VENUE, row, "sumPositionQuantity")
            signed = quantity if field(VENUE, row, "side") == "BUY" else -quantity
            symbol = field(VENUE, row, "symbol")
            before, average = totals.get(symbol, (Decimal(0), None))
            totals[symbol] = (before + signed, decimal_field(VENUE, row, "averagePositionRate") if quantity else average)
        return [BrokerPositionView(account=account, instrument=s, quantity=q, average_price=a)
                for s, (q, a) in sorted(totals.items())]

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        """GMO's private WebSocket (executionEvents) is not wired: resting orders are seen via lookup/recovery."""
        return
        yield  # pragma: no cover  (makes this an async generator that ends at once)
