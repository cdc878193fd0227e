"""An order intent as the engine sees it: validated, exact, frozen.

Everything a broker or a risk rule reads is checked here once, so later code
never meets a NaN price or an empty instrument.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.timeutil import to_timestamp
from services.common.vocabulary import OrderType, Side, StrategyRole, TimeInForce
from services.common.wire import (ORDER_TYPE_FROM_PROTO, ORDER_TYPE_TO_PROTO, ROLE_FROM_PROTO, ROLE_TO_PROTO,
                                  SIDE_FROM_PROTO, SIDE_TO_PROTO, TIME_IN_FORCE_FROM_PROTO, TIME_IN_FORCE_TO_PROTO, decimal_text)

CLIENT_ORDER_ID = validation.NAME  # [A-Za-z0-9._:-]{1,64}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_NOTE_CHARS = 1000
#: W3C trace headers are short (traceparent is 55 characters); the room is for tracestate's vendor entries.
MAX_TRACE_CHARS = 512
#: What an entry may ask the venue to hold once it fills (services/order/protection.py).
PROTECTION_FIELDS = ("stop_loss_distance", "take_profit_distance", "trailing_stop_distance")


@dataclass(frozen=True, kw_only=True, slots=True)
class Intent:
    """What a strategy wants done. Quantities and prices are exact Decimals."""

    client_order_id: str
    strategy_slug: str
    role: StrategyRole
    instrument: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    account: str = ""
    note: str = ""
    traceparent: str = ""
    tracestate: str = ""
    # Data time of the newest quote the decision saw (UTC). The paper venue fills the order only
    # at a later quote, so the fill follows from the data, not from when the order arrives.
    decision_time: datetime | None = None
    # Protection placed at the venue once the entry has filled (price distances from the fill).
    stop_loss_distance: Decimal | None = None
    take_profit_distance: Decimal | None = None
    trailing_stop_distance: Decimal | None = None
    # A TRAILING_STOP's distance behind the market (its stop_price, when set, is the first trigger).
    trail_distance: Decimal | None = None
    # Only opens or turns a position, never adds to one (risk.no_pyramiding).
    no_pyramiding: bool = False

    @property
    def signed_quantity(self) -> Decimal:
        return Side(self.side).signed(self.quantity)


def validate_intent(message: order_pb2.OrderIntent, *, instruments: Collection[str], default_account: str,
                    accounts: Collection[str] = ()) -> Intent:
    """Turns a wire intent into an `Intent`, or raises InvalidArgument with a sentence.

    `accounts` are the accounts this plane trades for; by default only `default_account`.
    """
    cid = message.client_order_id
    if not cid:
        raise InvalidArgument("client_order_id is empty; send 1 to 64 characters from [A-Za-z0-9._:-]")
    if len(cid) > 64:
        raise InvalidArgument(f"client_order_id is {len(cid)} characters long; at most 64 are allowed")
    if not CLIENT_ORDER_ID.fullmatch(cid):
        raise InvalidArgument(f"client_order_id {cid!r} has characters outside [A-Za-z0-9._:-]")
    if not message.strategy_slug:
        raise InvalidArgument("strategy_slug is empty; name the strategy (\"manual\" for an operator's order)")
    # Before any risk check: a slug no strategy can have must not reach the position plane.
    strategy_slug = validation.slug("strategy_slug", message.strategy_slug)
    role = ROLE_FROM_PROTO.get(message.role)
    if role is None:
        raise InvalidArgument(f"role {message.role} is not set; use STRATEGY_ROLE_ENTRY or STRATEGY_ROLE_EXIT")
    if message.instrument not in instruments:
        raise InvalidArgument(f"instrument {validation.shown(message.instrument)} is not traded here; "
                              f"known instruments: {', '.join(sorted(instruments))}")
    side = SIDE_FROM_PROTO.get(message.side)
    if side is None:
        raise InvalidArgument(f"side {message.side} is not set; use SIDE_BUY or SIDE_SELL")
    order_type = ORDER_TYPE_FROM_PROTO.get(message.order_type)
    if order_type is None:
        raise InvalidArgument(f"order_type {message.order_type} is not set; use ORDER_TYPE_MARKET, "
                              "ORDER_TYPE_LIMIT, ORDER_TYPE_STOP or ORDER_TYPE_TRAILING_STOP")
    quantity = validation.decimal("quantity", message.quantity)
    limit_price = validation.decimal("limit_price", message.limit_price, example="145.25") \
        if message.limit_price else None
    stop_price = validation.decimal("stop_price", message.stop_price, example="145.25") \
        if message.stop_price else None
    if order_type == "limit" and limit_price is None:
        raise InvalidArgument("a limit order needs limit_price; send the price as a decimal string")
    if order_type == "market" and (limit_price is not None or stop_price is not None):
        raise InvalidArgument("a market order must not carry limit_price or stop_price; "
                              "use ORDER_TYPE_LIMIT or ORDER_TYPE_STOP for a priced order")
    if order_type == "stop" and stop_price is None:
        raise InvalidArgument("a stop order needs stop_price; send the trigger price as a decimal string")
    if order_type == "stop" and limit_price is not None:
        raise InvalidArgument("a stop order must not carry limit_price (stop-limit orders are not supported)")
    if order_type == "limit" and stop_price is not None:
        raise InvalidArgument("a limit order must not carry stop_price")
    trail_distance = validation.decimal("trail_distance", message.trail_distance, example="0.20") \
        if message.trail_distance else None
    if order_type == OrderType.TRAILING_STOP and (trail_distance is None or limit_price is not None):
        raise InvalidArgument("a trailing stop needs trail_distance (a positive price distance) and no limit_price; "
                              "stop_price, when set, is its first trigger")
    if order_type != OrderType.TRAILING_STOP and trail_distance is not None:
        raise InvalidArgument("trail_distance belongs to ORDER_TYPE_TRAILING_STOP orders only; leave it empty")
    if message.time_in_force == order_pb2.TIME_IN_FORCE_UNSPECIFIED:
        # The contract's default: market orders do not rest, priced orders do.
        tif = TimeInForce.IOC if order_type == OrderType.MARKET else TimeInForce.GTC
    else:
        tif = TIME_IN_FORCE_FROM_PROTO.get(message.time_in_force)
        if tif is None:
            raise InvalidArgument(f"time_in_force {message.time_in_force} is not one of GTC, IOC, FOK")
    account = validation.known("account", message.account, accounts or (default_account,),
                               setting="QUANTMESH_ACCOUNT; leave account empty for the default") \
        if message.account else default_account
    decision_time = validation.timestamp(
        "decision_time", message.decision_time, after=EPOCH,
        hint="send the closed_time of the candle the decision saw, or leave decision_time unset") \
        if message.HasField("decision_time") else None
    protection = {name: validation.decimal(name, getattr(message, name), example="0.05")
                  for name in PROTECTION_FIELDS if getattr(message, name)}
    if protection and (role != StrategyRole.ENTRY or message.reduce_only):
        raise InvalidArgument("stop_loss_distance, take_profit_distance and trailing_stop_distance protect a new "
                              "position: send them on an ENTRY that is not reduce_only")
    if message.no_pyramiding and (role != StrategyRole.ENTRY or message.reduce_only):
        raise InvalidArgument("no_pyramiding keeps an entry from adding to a position: send it on an ENTRY that is "
                              "not reduce_only, or leave it false")
    return Intent(
        client_order_id=cid, strategy_slug=strategy_slug, role=role,
        instrument=message.instrument, side=side, quantity=quantity, order_type=order_type,
        limit_price=limit_price, stop_price=stop_price, time_in_force=tif, reduce_only=message.reduce_only,
        account=account, note=validation.text("note", message.note, max_chars=MAX_NOTE_CHARS),
        traceparent=validation.text("trace_context.traceparent", message.trace_context.traceparent,
                                    max_chars=MAX_TRACE_CHARS),
        tracestate=validation.text("trace_context.tracestate", message.trace_context.tracestate,
                                   max_chars=MAX_TRACE_CHARS),
        decision_time=decision_time, no_pyramiding=message.no_pyramiding, trail_distance=trail_distance,
        **protection,
    )


def intent_to_proto(intent: Intent) -> order_pb2.OrderIntent:
    return order_pb2.OrderIntent(
        client_order_id=intent.client_order_id, strategy_slug=intent.strategy_slug, role=ROLE_TO_PROTO[intent.role],
        instrument=intent.instrument, side=SIDE_TO_PROTO[intent.side], quantity=decimal_text(intent.quantity),
        order_type=ORDER_TYPE_TO_PROTO[intent.order_type],
        limit_price=decimal_text(intent.limit_price), stop_price=decimal_text(intent.stop_price),
        time_in_force=TIME_IN_FORCE_TO_PROTO[intent.time_in_force], reduce_only=intent.reduce_only, account=intent.account,
        note=intent.note,
        trace_context=common_pb2.TraceContext(traceparent=intent.traceparent, tracestate=intent.tracestate),
        decision_time=None if intent.decision_time is None else to_timestamp(intent.decision_time),
        stop_loss_distance=decimal_text(intent.stop_loss_distance),
        take_profit_distance=decimal_text(intent.take_profit_distance),
        trailing_stop_distance=decimal_text(intent.trailing_stop_distance),
        trail_distance=decimal_text(intent.trail_distance),
        no_pyramiding=intent.no_pyramiding,
    )
