"""The trading vocabulary every plane shares: sides, order types, time in force, roles, order states.

Each is a `StrEnum` whose value is the word stored in the databases and used in logs
("buy", "market", "GTC", "entry", "FILLED"), so a member equals its word and old rows
read back unchanged. `services.common.wire` maps them to and from protobuf, once.
"""

from __future__ import annotations

import enum
from decimal import Decimal


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    def signed(self, quantity: Decimal) -> Decimal:
        """The quantity with the sign a position sees: + for a buy, - for a sell."""
        return quantity if self is Side.BUY else -quantity

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class StrategyRole(enum.StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


class OrderState(enum.StrEnum):
    PENDING_SUBMIT = "PENDING_SUBMIT"
    SUBMITTED = "SUBMITTED"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


#: Nothing more will happen to an order in one of these states.
TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED})
#: Working at the venue: may still fill or be canceled.
OPEN = frozenset({OrderState.NEW, OrderState.PARTIALLY_FILLED})
#: Stored but not yet acknowledged by the venue.
IN_FLIGHT = frozenset({OrderState.PENDING_SUBMIT, OrderState.SUBMITTED})


def signed_quantity(side: str, quantity: Decimal) -> Decimal:
    """+quantity for a buy, -quantity for a sell (side as a Side or its word)."""
    return Side(side).signed(quantity)


__all__ = ["Side", "OrderType", "TimeInForce", "StrategyRole", "OrderState", "TERMINAL", "OPEN", "IN_FLIGHT",
           "signed_quantity"]
