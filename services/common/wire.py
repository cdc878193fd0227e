"""The one place where the trading vocabulary meets protobuf: enum members <-> wire values.

UNSPECIFIED (0) has no member on purpose: `*_FROM_PROTO.get(value)` answers None and each
caller says what a missing value means to it (usually INVALID_ARGUMENT with a sentence).
"""

from __future__ import annotations

from decimal import Decimal

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common.vocabulary import OrderState, OrderType, Side, StrategyRole, TimeInForce

SIDE_TO_PROTO: dict[Side, int] = {Side.BUY: common_pb2.SIDE_BUY, Side.SELL: common_pb2.SIDE_SELL}
ORDER_TYPE_TO_PROTO: dict[OrderType, int] = {OrderType.MARKET: order_pb2.ORDER_TYPE_MARKET,
                                             OrderType.LIMIT: order_pb2.ORDER_TYPE_LIMIT,
                                             OrderType.STOP: order_pb2.ORDER_TYPE_STOP,
                                             OrderType.TRAILING_STOP: order_pb2.ORDER_TYPE_TRAILING_STOP}
TIME_IN_FORCE_TO_PROTO: dict[TimeInForce, int] = {TimeInForce.GTC: order_pb2.TIME_IN_FORCE_GTC,
                                                  TimeInForce.IOC: order_pb2.TIME_IN_FORCE_IOC,
                                                  TimeInForce.FOK: order_pb2.TIME_IN_FORCE_FOK}
ROLE_TO_PROTO: dict[StrategyRole, int] = {StrategyRole.ENTRY: common_pb2.STRATEGY_ROLE_ENTRY,
                                          StrategyRole.EXIT: common_pb2.STRATEGY_ROLE_EXIT}
ORDER_STATE_TO_PROTO: dict[OrderState, int] = {s: order_pb2.OrderState.Value(f"ORDER_STATE_{s.value}")
                                               for s in OrderState}

SIDE_FROM_PROTO: dict[int, Side] = {v: k for k, v in SIDE_TO_PROTO.items()}
ORDER_TYPE_FROM_PROTO: dict[int, OrderType] = {v: k for k, v in ORDER_TYPE_TO_PROTO.items()}
TIME_IN_FORCE_FROM_PROTO: dict[int, TimeInForce] = {v: k for k, v in TIME_IN_FORCE_TO_PROTO.items()}
ROLE_FROM_PROTO: dict[int, StrategyRole] = {v: k for k, v in ROLE_TO_PROTO.items()}
ORDER_STATE_FROM_PROTO: dict[int, OrderState] = {v: k for k, v in ORDER_STATE_TO_PROTO.items()}


def order_state_name(value: int) -> str:
    """ORDER_STATE_FILLED -> "FILLED" (for clients that read the wire value)."""
    return order_pb2.OrderState.Name(value).removeprefix("ORDER_STATE_")


def decimal_text(value: Decimal | None) -> str:
    """An exact decimal string as the contracts carry money: never an exponent ("10000", not "1E+4";
    "0.0000001", not "1E-7"), the digits it was given otherwise ("86.50" stays "86.50"); "" for None."""
    if value is None:
        return ""
    if value == 0:
        return "0"
    return format(value, "f")


def trimmed_decimal_text(value: Decimal | None) -> str:
    """`decimal_text` without trailing zeros ("2160", not "2160.000"): for computed figures (PnL,
    averages), whose trailing zeros come from arithmetic, not from anyone's input."""
    return decimal_text(None if value is None else value.normalize())
