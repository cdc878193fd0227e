"""GMO Coin documents, both ways (https://api.coin.z.com/docs/): order bodies out, orders and fills in.

- Margin symbols are the ones with a quote currency (BTC_JPY, ETH_JPY, ...); spot symbols
  are bare (BTC, ETH). On a margin symbol /v1/order always opens a new position; closing
  one takes /v1/closeOrder (one position) or /v1/closeBulkOrder (by size).
- timeInForce: FAK (fill and kill), FAS (fill and store), FOK; GMO's default is FAK for
  MARKET and FAS for LIMIT, so an IOC limit must say FAK or it rests on the book.
- /v1/orders status: WAITING, ORDERED, MODIFYING, CANCELLING, CANCELED, EXECUTED, EXPIRED.
- An order's executions (/v1/executions) can lag its status and executedSize: an EXECUTED,
  CANCELED or EXPIRED order is reported unfinished until its executions add up to executedSize.
"""

from __future__ import annotations

from decimal import Decimal

from services.common.venues import MalformedVenueReply, decimal_field, field, rfc3339_time
from services.common.vocabulary import OrderType, TimeInForce
from services.order.brokers.base import FINISHED_STATES, BrokerAck, BrokerFill
from services.order.brokers.gmo_rest import VENUE
from services.order.brokers.precision import InstrumentRules

STATES = {"WAITING": "new", "ORDERED": "new", "MODIFYING": "new", "CANCELLING": "new", "EXECUTED": "filled",
          "CANCELED": "canceled", "EXPIRED": "expired"}
_LIMIT_TIF = {TimeInForce.GTC: "FAS", TimeInForce.IOC: "FAK", TimeInForce.FOK: "FOK"}
_MARKET_TIF = {TimeInForce.IOC: "FAK", TimeInForce.FOK: "FOK"}  # GTC: GMO's own default for MARKET (FAK)


def is_margin(symbol: str) -> bool:
    return "_" in symbol


def rules_of(row: dict) -> InstrumentRules:
    """From one entry of GET /public/v1/symbols."""
    symbol = str(field(VENUE, row, "symbol"))
    return InstrumentRules(venue=VENUE, instrument=symbol, price_step=decimal_field(VENUE, row, "tickSize"),
                           size_step=decimal_field(VENUE, row, "sizeStep"),
                           min_size=decimal_field(VENUE, row, "minOrderSize"),
                           max_size=decimal_field(VENUE, row, "maxOrderSize"), unit=symbol.split("_")[0])


def time_in_force(order_type: str, tif: str) -> str | None:
    # A STOP executes at market once triggered: it takes MARKET's choices (GTC: GMO's default).
    table = _LIMIT_TIF if order_type == OrderType.LIMIT else _MARKET_TIF
    return table.get(str(tif).upper())


def fills_of(client_order_id: str, rows: list[dict]) -> tuple[BrokerFill, ...]:
    """Rows of GET /v1/executions (or latestExecutions) -> fills with stable ids gmo-<executionId>."""
    return tuple(BrokerFill(broker_fill_id=f"gmo-{field(VENUE, row, 'executionId')}", client_order_id=client_order_id,
                            quantity=decimal_field(VENUE, row, "size"), price=decimal_field(VENUE, row, "price"),
                            commission=decimal_field(VENUE, row, "fee"),
                            time=rfc3339_time(field(VENUE, row, "timestamp"))) for row in rows)


def venue_state(row: dict) -> str:
    """GMO's own word on the order, whether or not its executions are listed yet."""
    state = STATES.get(field(VENUE, row, "status"))
    if state is None:
        raise MalformedVenueReply(VENUE, f"unknown order status {row['status']!r}", field="status")
    return state


def order_state(row: dict, listed: Decimal) -> str:
    """GMO's state, except that an order is not finished while its executions listed so far (`listed`)
    fall short of executedSize: finished, the order plane would close it (canceled is final) and
    reconciliation, which asks only about open orders, would never look for the missing fills.
    GMO writes sizes as decimal strings, so the two compare exactly."""
    state = venue_state(row)
    executed = decimal_field(VENUE, row, "executedSize")
    if state in FINISHED_STATES and listed < executed:
        return "partially_filled" if listed > 0 else "new"
    if state == "new" and executed > 0:
        return "partially_filled"
    return state


def ack_of(client_order_id: str, row: dict, fills: tuple[BrokerFill, ...], listed: Decimal | None = None) -> BrokerAck:
    """`listed`: the size of every execution read for the order so far (default: the size of `fills`)."""
    listed = sum((f.quantity for f in fills), Decimal(0)) if listed is None else listed
    state = order_state(row, listed)
    reason = f"GMO {row['status'].lower()}: {row.get('cancelType', '')}".rstrip(": ") \
        if state in ("canceled", "expired") else ""
    return BrokerAck(client_order_id=client_order_id, broker_order_id=str(field(VENUE, row, "orderId")), state=state,
                     filled_quantity=listed, reason=reason, fills=fills)
