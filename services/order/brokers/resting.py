"""What is new about an order since we last looked: its unseen fills, then its end.

Venues without a usable push channel are followed by polling (inside their rate budget):
each poll reads the order's full view (a BrokerAck) and `FillTracker.news` turns it into
BrokerExecutions: every fill not yet reported, then a canceled/expired state. A partial
fill of an order that was then canceled or expired is thereby booked as a fill, before the
state. Fill ids are the venue's, so a fill reported twice (after a restart the tracker
starts empty) is booked once by the engine.
"""

from __future__ import annotations

from services.order.brokers.base import FINISHED_STATES, BrokerAck, BrokerExecution


class FillTracker:
    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}

    def saw(self, ack: BrokerAck) -> None:
        """The engine got this ack directly (submit, lookup): its fills need not be reported again."""
        self._seen.setdefault(ack.client_order_id, set()).update(f.broker_fill_id for f in ack.fills)

    def news(self, ack: BrokerAck) -> list[BrokerExecution]:
        seen = self._seen.setdefault(ack.client_order_id, set())
        out = [BrokerExecution(client_order_id=ack.client_order_id, broker_order_id=ack.broker_order_id,
                               state=ack.state, fill=fill) for fill in ack.fills if fill.broker_fill_id not in seen]
        seen.update(f.broker_fill_id for f in ack.fills)
        if ack.state in ("canceled", "expired", "rejected"):
            out.append(BrokerExecution(client_order_id=ack.client_order_id, broker_order_id=ack.broker_order_id,
                                       state=ack.state, reason=ack.reason))
        if ack.state in FINISHED_STATES:
            self._seen.pop(ack.client_order_id, None)
        return out
