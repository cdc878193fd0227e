"""What is new about an order since we last looked: its unseen fills, then its end.

Venues without a usable push channel are followed by polling (inside their rate budget):
each poll reads the order's full view (a BrokerAck) and `FillTracker.news` turns it into
BrokerExecutions: every fill not yet reported, then a canceled/expired state. A partial
fill of an order that was then canceled or expired is thereby booked as a fill, before the
state. Fill ids are the venue's, so a fill reported twice (after a restart the tracker
starts empty) is booked once by the engine.

An order the venue calls finished while its list of trades still misses some of its fills is
reported unfinished by the adapters (ccxt_orders, gmo_wire), so it stays followed here; `TradesLag`
says how long it is worth polling it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from services.common.clock import Clock
from services.order.brokers.base import FINISHED_STATES, BrokerAck, BrokerExecution

log = logging.getLogger(__name__)
#: Exchanges list an order's trades moments after its status moves; a minute later something is wrong.
TRADES_PATIENCE = timedelta(minutes=1)


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


class TradesLag:
    """Orders a venue calls finished whose listed trades fall short of what it says they filled.

    They are polled on while the trades catch up. Past TRADES_PATIENCE polling stops, with a warning
    naming the order: the order is still open in the order plane (the adapter never reported it
    finished), so reconciliation (QUANTMESH_RECONCILE_SECONDS) keeps asking for it and books the fills
    once the venue lists them, and meanwhile an operator can look at the venue.
    """

    def __init__(self, clock: Clock, venue: str) -> None:
        self._clock = clock
        self._venue = venue
        self._since: dict[str, datetime] = {}  # client id -> when its trades were first seen lagging
        self._warned: set[str] = set()

    def waited_out(self, ack: BrokerAck, *, finished_at_venue: bool, filled: Decimal) -> bool:
        """Whether to stop polling this order: the venue finished it and its trades have lagged too long."""
        cid = ack.client_order_id
        if not finished_at_venue or ack.state in FINISHED_STATES:  # working, or every fill listed
            self._since.pop(cid, None)
            self._warned.discard(cid)
            return False
        since = self._since.setdefault(cid, self._clock.now())
        if self._clock.now() - since < TRADES_PATIENCE:
            return False
        if cid not in self._warned:
            self._warned.add(cid)
            log.warning("the venue finished an order but still lists only part of its fills; no longer polled, "
                        "left open for reconciliation to book the rest", extra={
                            "venue": self._venue, "client_order_id": cid, "order_id": ack.broker_order_id,
                            "filled_at_venue": str(filled), "fills_listed": str(ack.filled_quantity),
                            "lagging_since": since.isoformat()})
        return True
