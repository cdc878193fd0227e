"""The one interface every venue adapter implements.

A venue is an external system: the order plane knows only what it answers
through this protocol. `submit` is idempotent on client_order_id (the retry
safety net); `lookup` answers "do you have this client id" after a crash.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

# Venue-side order states (lowercase, the venue's words; the engine maps them).
VENUE_STATES = ("new", "partially_filled", "filled", "canceled", "expired", "rejected")


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerOrder:
    client_order_id: str
    account: str
    instrument: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    order_type: str  # "market" | "limit" | "stop"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = "GTC"
    # The intent's decision time: the paper venue fills only at quotes strictly later.
    # Real venues fill against their own market and ignore it.
    decision_time: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerFill:
    broker_fill_id: str
    client_order_id: str
    quantity: Decimal
    price: Decimal
    commission: Decimal
    time: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerAck:
    """The venue's view of one order: its id, state, and every fill so far."""

    client_order_id: str
    broker_order_id: str
    state: str
    filled_quantity: Decimal = Decimal(0)
    reason: str = ""
    fills: tuple[BrokerFill, ...] = field(default=())


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerExecution:
    """Something the venue did on its own: a fill, or a state change (expired, canceled)."""

    client_order_id: str
    broker_order_id: str
    state: str
    fill: BrokerFill | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerPositionView:
    account: str
    instrument: str
    quantity: Decimal
    average_price: Decimal | None


class BrokerError(Exception):
    pass


class RetryableBrokerError(BrokerError):
    """Safe to send again with the same client id (refused before sending, 5xx with idempotency key)."""


class BrokerOverloaded(BrokerError):
    """The venue asks us to slow down (HTTP 429); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerRejected(BrokerError):
    """Final: the venue refused the order; sending it again would be refused again."""


class Broker(Protocol):
    name: str

    async def submit(self, order: BrokerOrder) -> BrokerAck: ...

    async def cancel(self, client_order_id: str) -> BrokerAck: ...

    async def lookup(self, client_order_id: str) -> BrokerAck | None: ...

    async def positions(self, account: str) -> list[BrokerPositionView]: ...

    def executions(self) -> AsyncIterator[BrokerExecution]: ...
