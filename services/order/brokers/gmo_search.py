"""Finding a GMO order whose POST reply was lost, or proving that GMO never created it.

GMO Coin has no client order id, so an order sent without a readable reply is searched
for: the symbol's active orders (GET /v1/activeOrders) and its executions since the send
(GET /v1/latestExecutions, paged), each candidate checked field by field against what was
sent (GET /v1/orders: symbol, side, executionType, settleType, size, price), minus the
orders already linked to another client id. One candidate: that is the order. Several:
unknown, an operator decides. None: absent only once `settle` has passed since the send
(GMO lists an accepted order well before that); earlier it is still unknown.

Blind spot: a FAK/FOK order that expired without any execution is neither active nor
executed, so it reads as absent. Nothing traded, so nothing is lost, but the record says so.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from services.common.venues import rfc3339_time
from services.order.brokers.base import OutcomeUnknown
from services.order.brokers.gmo_orders import SentOrder
from services.order.brokers.gmo_rest import GmoRest

log = logging.getLogger(__name__)
SKEW = timedelta(seconds=5)  # clocks differ: an order GMO stamped a little before our send still counts
_PAGES = 10                  # latestExecutions pages (100 rows each) read at most per search


def matches(row: dict, sent: SentOrder, since: datetime) -> bool:
    price = row.get("price")
    return (row.get("symbol") == sent.symbol and row.get("side") == sent.side
            and row.get("executionType") == sent.execution_type
            and row.get("settleType", "OPEN") == sent.settle_type
            and Decimal(str(row.get("size"))) == sent.size
            and (sent.price is None or (price is not None and Decimal(str(price)) == sent.price))
            and rfc3339_time(row.get("timestamp")) >= since)


async def orders_by_id(rest: GmoRest, order_ids: list[str]) -> list[dict]:
    rows: list[dict] = []
    for start in range(0, len(order_ids), 10):  # GMO takes up to 10 ids per request
        data = await rest.private("GET", "/v1/orders", params={"orderId": ",".join(order_ids[start:start + 10])})
        rows += (data or {}).get("list", [])
    return rows


async def find_sent(rest: GmoRest, sent: SentOrder, claimed: set[str], now: datetime,
                    settle: timedelta) -> str | None:
    """GMO's orderId of `sent`; None when GMO proves it has no such order; else OutcomeUnknown."""
    since = sent.sent_at - SKEW
    found: set[str] = set()
    active = await rest.private("GET", "/v1/activeOrders", params={"symbol": sent.symbol, "count": "100"})
    found |= {str(r["orderId"]) for r in (active or {}).get("list", []) if matches(r, sent, since)}
    executed: set[str] = set()
    for page in range(1, _PAGES + 1):
        data = await rest.private("GET", "/v1/latestExecutions",
                                  params={"symbol": sent.symbol, "page": str(page), "count": "100"})
        rows = (data or {}).get("list", [])
        executed |= {str(r["orderId"]) for r in rows if r.get("side") == sent.side
                     and r.get("settleType", "OPEN") == sent.settle_type and rfc3339_time(r["timestamp"]) >= since}
        if len(rows) < 100 or any(rfc3339_time(r["timestamp"]) < since for r in rows):
            break
    unchecked = sorted(executed - found - claimed)
    found |= {str(r["orderId"]) for r in await orders_by_id(rest, unchecked) if matches(r, sent, since)}
    candidates = sorted(found - claimed)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        log.error("several GMO orders match an order in doubt; an operator must decide",
                  extra={"client_order_id": sent.client_order_id, "order_ids": candidates})
        raise OutcomeUnknown(f"GMO Coin has {len(candidates)} orders ({', '.join(candidates)}) that match client id "
                             f"{sent.client_order_id!r}; an operator must decide which is ours")
    if now - sent.sent_at >= settle:
        return None
    raise OutcomeUnknown(f"GMO Coin does not list the order of client id {sent.client_order_id!r} yet; it is never "
                         "posted twice")
