"""OANDA v20 documents, both ways: order bodies out, fills and instrument rules in.

Fills are read from the fields OANDA names as official. `OrderFillTransaction.price` is
"deprecated and should no longer be used. The individual tradesClosed, tradeReduced and
tradeOpened fields contain the exact/official price each unit was filled at"
(https://developer.oanda.com/rest-live-v20/transaction-df/#OrderFillTransaction; the same
text in oanda/v20-python src/v20/transaction.py). So one ORDER_FILL becomes one fill per
trade it opened, reduced or closed, each at its own price, with a stable id.
"""

from __future__ import annotations

from decimal import Decimal

from services.common.venues import MalformedVenueReply, decimal_field, field, rfc3339_time
from services.common.vocabulary import OrderType, TimeInForce
from services.order.brokers.base import (BrokerAck, BrokerFill, BrokerFinancing, BrokerOrder, BrokerRejected,
                                         ProtectionOnFill)
from services.order.brokers.precision import InstrumentRules, plain, step_of_places

VENUE = "OANDA"
_ORDER_TYPES = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT", OrderType.STOP: "STOP"}
# v20 MarketOrder takes FOK (its default) or IOC; LIMIT/STOP take GTC, GFD, FOK, IOC.
_MARKET_TIF = {TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK", TimeInForce.GTC: "FOK"}
STATES = {"PENDING": "new", "TRIGGERED": "new", "FILLED": "filled", "CANCELLED": "canceled"}


def rules_of(instrument: dict) -> InstrumentRules:
    """From one entry of GET /v3/accounts/{id}/instruments."""
    maximum = instrument.get("maximumOrderUnits")
    return InstrumentRules(
        venue=VENUE, instrument=str(field(VENUE, instrument, "name")),
        price_step=step_of_places(int(field(VENUE, instrument, "displayPrecision"))),
        size_step=step_of_places(int(field(VENUE, instrument, "tradeUnitsPrecision"))),
        min_size=decimal_field(VENUE, instrument, "minimumTradeSize") if instrument.get("minimumTradeSize") else None,
        max_size=Decimal(str(maximum)) if maximum else None, unit="units")


def order_body(order: BrokerOrder, rules: InstrumentRules | None = None) -> dict:
    """The v20 order request. With `rules`, numbers are checked against the instrument's precision."""
    if order.order_type == OrderType.TRAILING_STOP:
        raise BrokerRejected(f"{VENUE} holds a trailing stop only on a trade: send trailing_stop_distance on the "
                             "entry (trailingStopLossOnFill); the order was not sent", rule="venue.order_type")
    if order.order_type not in _ORDER_TYPES:
        raise BrokerRejected(f"{VENUE}: order type {order.order_type!r} is not mapped", rule="venue.order_type")
    if order.on_trade:
        return _take_profit_on_trade(order, rules)
    size = rules.size(order.quantity) if rules else plain(order.quantity)
    body = {"type": _ORDER_TYPES[order.order_type], "instrument": order.instrument,
            "units": size if order.side == "buy" else f"-{size}",
            # REDUCE_ONLY: OANDA refuses what would open or grow a position instead of opening one.
            "positionFill": "REDUCE_ONLY" if order.reduce_only else "DEFAULT",
            "clientExtensions": {"id": order.client_order_id}}
    tif = str(order.time_in_force).upper()
    if order.order_type == OrderType.MARKET:
        body["timeInForce"] = _MARKET_TIF.get(tif, "FOK")
    else:
        price = order.limit_price if order.order_type == OrderType.LIMIT else order.stop_price
        if price is None:
            raise BrokerRejected(f"{VENUE}: a {order.order_type} order needs a price", rule="venue.order_type")
        body["price"] = rules.price(price) if rules else plain(price)
        body["timeInForce"] = tif if tif in ("GTC", "GFD", "FOK", "IOC") else "GTC"
    if order.on_fill is not None:
        body.update(on_fill_details(order.on_fill, rules))
    return body


def _take_profit_on_trade(order: BrokerOrder, rules: InstrumentRules | None) -> dict:
    """A TAKE_PROFIT on the trade an entry opened (TakeProfitOrderRequest, by clientTradeID): it closes
    that trade at the price or better, and OANDA cancels it when the trade closes."""
    if order.order_type != OrderType.LIMIT or order.limit_price is None:
        raise BrokerRejected(f"{VENUE}: only a take-profit (a limit) is placed on a trade", rule="venue.order_type")
    return {"type": "TAKE_PROFIT", "clientTradeID": order.on_trade,
            "price": rules.price(order.limit_price) if rules else plain(order.limit_price), "timeInForce": "GTC",
            "clientExtensions": {"id": order.client_order_id}}


def on_fill_details(on_fill: ProtectionOnFill, rules: InstrumentRules | None) -> dict:
    """stopLossOnFill / trailingStopLossOnFill: OANDA creates them on the trade the fill opens, at
    these distances from the trade's price, with our client ids (StopLossDetails,
    TrailingStopLossDetails: https://developer.oanda.com/rest-live-v20/transaction-df/)."""
    def details(distance: Decimal, client_id: str) -> dict:
        return {"distance": rules.price(distance) if rules else plain(distance), "timeInForce": "GTC",
                "clientExtensions": {"id": client_id}}

    out: dict = {}
    if on_fill.trade_client_id:
        out["tradeClientExtensions"] = {"id": on_fill.trade_client_id}
    if on_fill.stop_loss is not None:
        out["stopLossOnFill"] = details(on_fill.stop_loss, on_fill.stop_loss_id)
    if on_fill.trailing_stop is not None:
        out["trailingStopLossOnFill"] = details(on_fill.trailing_stop, on_fill.trailing_stop_id)
    return out


def reject_reason(data: dict) -> str:
    reject = data.get("orderRejectTransaction") or {}
    return str(reject.get("rejectReason") or data.get("errorCode") or data.get("errorMessage") or "unknown reason")


def fills_of(client_order_id: str, tx: dict) -> tuple[BrokerFill, ...]:
    """One ORDER_FILL transaction -> one fill per trade closed, reduced or opened, at its official price."""
    tx_id = field(VENUE, tx, "id")
    parts: list[tuple[str, dict]] = [("close", t) for t in tx.get("tradesClosed") or []]
    if tx.get("tradeReduced"):
        parts.append(("reduce", tx["tradeReduced"]))
    if tx.get("tradeOpened"):
        parts.append(("open", tx["tradeOpened"]))
    if not parts:
        raise MalformedVenueReply(VENUE, f"the ORDER_FILL {tx_id} has none of tradeOpened, tradesClosed, "
                                  "tradeReduced", field="tradeOpened")
    commission = abs(Decimal(str(tx.get("commission") or "0")))
    time = rfc3339_time(str(field(VENUE, tx, "time")))
    fills = tuple(BrokerFill(
        broker_fill_id=f"oanda-{tx_id}-{kind}-{field(VENUE, part, 'tradeID')}", client_order_id=client_order_id,
        quantity=abs(decimal_field(VENUE, part, "units")), price=decimal_field(VENUE, part, "price"),
        commission=commission if i == 0 else Decimal(0), time=time) for i, (kind, part) in enumerate(parts))
    if sum(f.quantity for f in fills) != abs(decimal_field(VENUE, tx, "units")):
        raise MalformedVenueReply(VENUE, f"the trades of ORDER_FILL {tx_id} do not add up to its units",
                                  field="units")
    return fills


def ack_from_create(order: BrokerOrder, data: dict) -> BrokerAck:
    """Reads the whole 201 reply before returning anything, so a half-readable reply records no fill."""
    created = field(VENUE, data, "orderCreateTransaction")
    order_id = str(field(VENUE, created, "id"))
    fills: tuple[BrokerFill, ...] = ()
    state, reason = "new", ""
    if data.get("orderFillTransaction") is not None:
        fills = fills_of(order.client_order_id, data["orderFillTransaction"])
        state = "filled" if sum(f.quantity for f in fills) >= order.quantity else "partially_filled"
    if data.get("orderCancelTransaction") is not None:
        reason = f"OANDA canceled the order: {data['orderCancelTransaction'].get('reason', 'no reason given')}"
        # A market order canceled at once never worked: to the trader it is a rejection.
        state = "rejected" if not fills and order.order_type == OrderType.MARKET else "canceled"
    return BrokerAck(client_order_id=order.client_order_id, broker_order_id=order_id, state=state,
                     filled_quantity=sum((f.quantity for f in fills), Decimal(0)), reason=reason, fills=fills)


def financing_of(tx: dict, currency: str) -> list[BrokerFinancing]:
    """One DAILY_FINANCING transaction -> one charge per open trade, in the account's currency.

    positionFinancings[].openTradeFinancings[].financing is "the amount of financing paid/collected
    for the Trade" in the account's units (DailyFinancingTransaction, PositionFinancing,
    OpenTradeFinancing: https://developer.oanda.com/rest-live-v20/transaction-df/). A trade's id is
    the id of the ORDER_FILL that opened it, so the opening fill is "oanda-<id>-open-<id>" (fills_of).
    """
    tx_id, time = field(VENUE, tx, "id"), rfc3339_time(str(field(VENUE, tx, "time")))
    charges = []
    for position in tx.get("positionFinancings") or []:
        instrument = str(field(VENUE, position, "instrument"))
        for trade in position.get("openTradeFinancings") or []:
            trade_id = str(field(VENUE, trade, "tradeID"))
            charges.append(BrokerFinancing(
                financing_id=f"oanda-{tx_id}-trade-{trade_id}", instrument=instrument,
                amount=decimal_field(VENUE, trade, "financing"), currency=currency, time=time,
                broker_fill_id=f"oanda-{trade_id}-open-{trade_id}"))
    return charges
