"""A ccxt order structure (https://docs.ccxt.com/#/README?id=order-structure) as a BrokerAck with every fill.

Fills come per trade, with the exchange's trade ids. When the order structure carries no
trades (Binance's GET /api/v3/order never does) and something was filled, the trades are
asked for (`fetch_order_trades`, Binance: GET /api/v3/myTrades?orderId=), so the partial
fill of an order that was then canceled or expired is booked too. Only an exchange that
cannot list an order's trades gets one fill for the whole filled amount, once the order is
finished (a running cumulative amount would be counted twice).

An exchange's list of trades can lag its order status: 'closed' or 'canceled' with a `filled`
above the trades listed so far. Such an order is reported unfinished ("partially_filled", or
"new" with nothing listed yet) until its trades cover `filled`: the poller keeps following it
and the order plane keeps it open, instead of finishing it and never looking for the rest.

How a stop-market is spelt: ccxt's unified trigger order, `create_order(symbol, 'market', side,
amount, None, {'triggerPrice': p})` (Binance spot: type STOP_LOSS with stopPrice, "This will
execute a MARKET order when the conditions are met").
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import ccxt

from services.common.venues import CCXT_CLIENT_ID_EXCHANGES
from services.order.brokers.base import FINISHED_STATES, BrokerAck, BrokerFill, OutcomeUnknown

STATES = {"open": "new", "closed": "filled", "canceled": "canceled", "cancelled": "canceled",
          "expired": "expired", "rejected": "rejected"}


def symbol_of(instrument: str) -> str:
    return instrument.replace("_", "/")


def stop_param(exchange) -> str | None:
    """The create_order param that makes a market order a stop-market held by the exchange; None without one.

    `triggerPrice` where ccxt declares createTriggerOrder (Binance); `stopPrice`, what ccxt's own
    create_stop_market_order / create_stop_order send, where it declares only those (Kraken). An
    'emulated' capability does not count: a stop that ccxt would watch for us is not held at the venue.
    """
    if exchange.has.get("createTriggerOrder") is True:
        return "triggerPrice"
    if exchange.has.get("createStopMarketOrder") is True or exchange.has.get("createStopOrder") is True:
        return "stopPrice"
    return None


def stop_listed(exchange, market: dict) -> bool:
    """False when the exchange's own market data leaves the stop-market out (Binance spot: the
    symbol's exchangeInfo orderTypes without STOP_LOSS: "Stop loss orders are not supported for this symbol")."""
    listed = (market.get("info") or {}).get("orderTypes")
    if exchange.id in CCXT_CLIENT_ID_EXCHANGES and market.get("spot") and isinstance(listed, list):
        return "STOP_LOSS" in listed
    return True


def _time(stamp) -> datetime:
    return datetime.fromtimestamp(stamp / 1000, timezone.utc) if stamp else datetime.now(timezone.utc)


def _fills(name: str, cid: str, order_id: str, trades: list[dict], fallback_time) -> tuple[BrokerFill, ...]:
    return tuple(BrokerFill(
        broker_fill_id=f"{name}-{t.get('id') or order_id + '-' + str(i)}", client_order_id=cid,
        quantity=Decimal(str(t["amount"])), price=Decimal(str(t["price"])),
        commission=Decimal(str((t.get("fee") or {}).get("cost") or 0)),
        time=_time(t.get("timestamp") or fallback_time)) for i, t in enumerate(trades))


def finished_at_venue(found: dict) -> bool:
    """The exchange's own word that it does nothing more with the order (its trades may still be on their way)."""
    return STATES.get(found.get("status") or "open") in FINISHED_STATES


def venue_filled(found: dict) -> Decimal:
    """What the exchange says the order filled, whether or not its trades are listed yet."""
    return Decimal(str(found.get("filled") or 0))


def _slack(exchange, instrument: str, filled: Decimal) -> Decimal:
    """How far the trades listed may fall short of `filled` and still be all of them.

    ccxt hands amounts over as floats, and `filled` may be its float sum of the trades, so the two can
    differ in the last bits (0.1 + 0.2). A missing trade is at least one amount step, so half the
    market's step tells them apart; without a step at hand, a billionth of the amount.
    """
    market = (getattr(exchange, "markets", None) or {}).get(symbol_of(instrument)) or {}
    step = (market.get("precision") or {}).get("amount")
    mode = getattr(exchange, "precisionMode", None)
    if step is not None and mode == ccxt.TICK_SIZE:
        return Decimal(str(step)) / 2
    if step is not None and mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(step)) / 2
    return filled * Decimal("1e-9")


def _amount(trades: list[dict]) -> Decimal:
    return sum((Decimal(str(t["amount"])) for t in trades), Decimal(0))


def _covers(exchange, instrument: str, trades: list[dict], filled: Decimal) -> bool:
    return _amount(trades) >= filled - _slack(exchange, instrument, filled)


async def _trades(exchange, venue: str, found: dict, instrument: str, filled: Decimal) -> list[dict]:
    """The order's trades: those in its structure when they cover `filled`, else the exchange's list of them."""
    trades = found.get("trades") or []
    if filled > 0 and not _covers(exchange, instrument, trades, filled) and exchange.has.get("fetchOrderTrades"):
        try:
            listed = await exchange.fetch_order_trades(str(found["id"]), symbol_of(instrument))
        except ccxt.BaseError as exc:
            raise OutcomeUnknown(f"{venue}: fetch_order_trades failed: {type(exc).__name__}: {exc}") from None
        if _amount(listed) >= _amount(trades):  # a list behind the structure's own trades tells nothing new
            trades = listed
    return trades


def _unfinished_until_listed(state: str, filled: Decimal, booked: Decimal, slack: Decimal) -> str:
    """The exchange's state, except that an order is not finished while the fills booked miss part of
    `filled` (by more than `slack`): finished, the order plane would close it (canceled is final) and
    reconciliation, which asks only about open orders, would never look for the missing fills."""
    if state in FINISHED_STATES and booked < filled - slack:
        return "partially_filled" if booked > 0 else "new"
    if state == "new" and booked > 0:
        return "partially_filled"
    return state


async def ack_of(exchange, name: str, cid: str, found: dict, instrument: str) -> BrokerAck:
    """Reads everything before returning, so a half-readable order records no fill (OutcomeUnknown instead)."""
    venue = f"ccxt {exchange.id}"
    order_id = found.get("id")
    if not order_id:
        raise OutcomeUnknown(f"{venue}: the order reply has no field 'id'")
    state = STATES.get(found.get("status") or "open")
    if state is None:
        raise OutcomeUnknown(f"{venue}: the order reply has an unknown 'status' {found.get('status')!r}")
    try:
        filled = venue_filled(found)
        trades = await _trades(exchange, venue, found, instrument, filled)
        if trades:
            fills = _fills(name, cid, str(order_id), trades, found.get("timestamp"))
        elif filled > 0 and state in FINISHED_STATES and not exchange.has.get("fetchOrderTrades"):
            price = found.get("average") or found.get("price")
            if price is None:
                raise OutcomeUnknown(f"{venue}: a filled order reply has no field 'average'")
            fills = (BrokerFill(broker_fill_id=f"{name}-{order_id}-all", client_order_id=cid, quantity=filled,
                                price=Decimal(str(price)),
                                commission=Decimal(str((found.get("fee") or {}).get("cost") or 0)),
                                time=_time(found.get("lastTradeTimestamp") or found.get("timestamp"))),)
        else:
            fills = ()
    except (InvalidOperation, TypeError, KeyError):
        raise OutcomeUnknown(f"{venue}: the order reply has a non-numeric 'filled', 'price' or 'amount'") from None
    booked = sum((f.quantity for f in fills), Decimal(0))
    return BrokerAck(client_order_id=cid, broker_order_id=str(order_id),
                     state=_unfinished_until_listed(state, filled, booked, _slack(exchange, instrument, filled)),
                     filled_quantity=booked,
                     fills=fills)
