"""One resting closing order per position on a spot exchange, where nothing at the venue is reduce-only.

The order plane gives a position's protective stop, its take-profit and every exit of it one
group (`BrokerOrder.oco_group`): the first to fill must cancel the others, so the position is
closed once, never twice. A spot exchange has no reduce-only orders and holds the base asset of
every open sell order: Binance answers a second sell of the same coins "Account has
insufficient balance for requested action." (-2010), and an account that holds more coins than
the position would take both, so a stop and a take-profit resting side by side could both fill.
Binance pairs them only as an OCO order list (POST /api/v3/orderList/oco), which this adapter
does not send. So, per group, on spot:

- the first closing order that rests (a stop, a GTC limit) is sent; a second one that would rest
  beside it is refused before sending (rule `venue.oco`);
- a closing order that does not rest (market, IOC/FOK limit) first takes the resting ones away
  (cancel, then a look at what they did), then is sent: the exit is never refused for coins the
  stop holds, and never sent after the stop has already closed the position.

A resting closing order holds its place from the moment it is sent, so one whose outcome is in
doubt keeps a second one out too. The groups live in memory: after a restart they are learnt
again as protection re-places its orders. A withdrawn order stays followed, so its cancel reaches
the engine through `executions()`.
"""

from __future__ import annotations

from services.common.vocabulary import OrderType
from services.order.brokers.base import BrokerOrder

OCO_RULE = "venue.oco"


def rests(order: BrokerOrder) -> bool:
    """Whether the order stays at the venue after it is placed: a stop until triggered, a GTC limit until filled."""
    return order.order_type == OrderType.STOP or (
        order.order_type == OrderType.LIMIT and str(order.time_in_force).upper() == "GTC")


class ClosingGroups:
    """Client ids of the closing orders resting at the venue, per group."""

    def __init__(self) -> None:
        self._members: dict[str, set[str]] = {}
        self._group_of: dict[str, str] = {}

    def resting(self, group: str) -> list[str]:
        return sorted(self._members.get(group, ()))

    def rest(self, group: str, client_order_id: str) -> None:
        self._members.setdefault(group, set()).add(client_order_id)
        self._group_of[client_order_id] = group

    def ended(self, client_order_id: str) -> None:
        group = self._group_of.pop(client_order_id, None)
        if group is not None:
            members = self._members[group]
            members.discard(client_order_id)
            if not members:
                del self._members[group]
