"""The one interface every venue adapter implements, and the contract with the order engine.

A venue is an external system: the order plane knows only what it answers through this
protocol. Real money depends on each method being honest about what it knows:

`submit(order)`
    Sends the order once. Returns a BrokerAck when the venue answered (with every fill so
    far). Raises
    - `BrokerRejected` (final): the venue refused it, or the adapter refused it before
      sending (`rule` names why, e.g. "venue.precision"); nothing happened at the venue;
    - `RetryableBrokerError`: the venue definitely did not take it (connection refused
      before anything was sent, an explicit refusal that guarantees nothing happened):
      the gateway may send it again;
    - `BrokerOverloaded`: HTTP 429 or the venue's "too many requests": not taken, slow down;
    - `OutcomeUnknown`: the venue may or may not have the order (timeout, connection cut
      mid-request, HTTP 5xx after the request was sent, Binance -1006/-1007, GMO busy or
      maintenance answered to the order POST, an unreadable success reply). An adapter
      never POSTs an order twice itself, and the gateway never retries `submit` after it.

`lookup(client_order_id)`
    A BrokerAck when the venue has the order (any state, every fill so far); `None` ONLY
    when the venue definitively has no such order; `OutcomeUnknown` (or
    RetryableBrokerError) when it cannot tell. A venue without client ids (GMO) looks
    the order up by its own id from the adapter's durable record of what was sent.

The engine, on OutcomeUnknown, calls `lookup`: found -> adopt it; None or unknown ->
the order stays SUBMITTED and is looked up again later. It is never POSTed again.

`cancel(client_order_id)`, `positions(account)`: reads and cancels may be retried on
OutcomeUnknown/RetryableBrokerError by the gateway (canceling twice is harmless).

`executions()`
    Everything the venue does on its own: fills of resting orders, cancels, expiries
    (a partial fill of a canceled or expired order arrives as a fill, then the state).
    Fill ids are stable, so the engine may see one fill twice and books it once. A venue
    that reports financing at its rollover (OANDA's DAILY_FINANCING) yields it here too, as
    `BrokerFinancing` with stable ids, per trade.

`protects_on_fill` (optional, False when absent): the venue creates an entry's stop-loss and
trailing stop itself when the entry fills, tied to the trade it opens (OANDA's stopLossOnFill /
trailingStopLossOnFill), from `BrokerOrder.on_fill`; the order plane then records those orders
by the client ids it gave them and looks them up, instead of sending its own, and sends the
take-profit on that trade (`BrokerOrder.on_trade`) once the fill price is known.
`trailing_stops` (optional, False when absent): the venue holds trailing stops (the paper venue
tick by tick, OANDA on a trade); an entry asking for one anywhere else is refused before it is
sent (rule `venue.trailing_stop`), so no position is opened that its trailing stop cannot follow.
`one_resting_close` (optional, False when absent): the venue holds one resting closing order per
position (a spot exchange without reduce-only orders or OCO lists): protection places the
stop-loss alone, not a take-profit beside it.

`BrokerOrder.role` ("entry" | "exit") and `reduce_only` come from the intent: exits and
cancels get their own lane in the venues' rate budgets, and on GMO margin symbols an
exit closes positions (/v1/closeOrder) instead of opening the opposite side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.common.vocabulary import StrategyRole

# Venue-side order states (lowercase, the venue's words; the engine maps them).
VENUE_STATES = ("new", "partially_filled", "filled", "canceled", "expired", "rejected")
#: The order states after which a venue does nothing more with an order.
FINISHED_STATES = ("filled", "canceled", "expired", "rejected")


@dataclass(frozen=True, kw_only=True, slots=True)
class ProtectionOnFill:
    """Protection the venue creates when the entry fills, on the trade it opens: no moment between
    the fill and the stop. Distances are from the trade's price; the ids are ours for those orders."""

    stop_loss: Decimal | None = None
    stop_loss_id: str = ""
    trailing_stop: Decimal | None = None
    trailing_stop_id: str = ""
    # Our id for the trade the fill opens: the take-profit is placed on it once the price is known.
    trade_client_id: str = ""


#: What a venue may declare about itself (see the module docstring); False when it does not say.
TRAITS = ("protects_on_fill", "trailing_stops", "one_resting_close")


def trait(broker: object, name: str) -> bool:
    """Whether the venue behind `broker` (through any wrapper that copies its traits) declares `name`."""
    if name not in TRAITS:
        raise ValueError(f"{name!r} is not a venue trait; known: {', '.join(TRAITS)}")
    return bool(getattr(broker, name, False))


def copy_traits(wrapper: object, inner: object) -> None:
    """A wrapper (the gateway, a fault switch) declares what the venue it wraps declares."""
    for name in TRAITS:
        setattr(wrapper, name, trait(inner, name))


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerOrder:
    client_order_id: str
    account: str
    instrument: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    order_type: str  # "market" | "limit" | "stop" | "trailing_stop"
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None  # a trailing stop's first trigger, when set
    trail_distance: Decimal | None = None  # a trailing stop's distance behind the market
    time_in_force: str = "GTC"
    # The intent's decision time: the paper venue fills only at quotes strictly later.
    # Real venues fill against their own market and ignore it.
    decision_time: datetime | None = None
    # Orders of one group cancel each other at the venue: the first to fill cancels the rest
    # (a position's protective stop, its take-profit and an exit of it: one closes, never two).
    oco_group: str = ""
    role: str = StrategyRole.ENTRY
    reduce_only: bool = False
    # Set only for a venue that protects on fill, on an entry that asked for protection.
    on_fill: ProtectionOnFill | None = None
    # A take-profit the venue holds on the trade an entry opened (its trade_client_id), not on the
    # position: it closes that trade, and the venue cancels it when the trade closes.
    on_trade: str = ""

    @property
    def is_exit(self) -> bool:
        """Exits and reduce-only orders: they get the priority lane and close positions where venues keep them."""
        return self.reduce_only or self.role == StrategyRole.EXIT


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
class BrokerFinancing:
    """Financing the venue charged (negative) or paid (positive) on one trade at its rollover."""

    financing_id: str    # stable: the venue's transaction and trade
    instrument: str
    amount: Decimal
    currency: str        # as the venue states it (OANDA: the account's home currency)
    time: datetime
    broker_fill_id: str  # the fill that opened the trade ("" when the venue does not say)


@dataclass(frozen=True, kw_only=True, slots=True)
class BrokerPositionView:
    """The venue's position. `quantity` is signed (+ long, - short) so consumers that sum keep working.

    `side` is "long" or "short" where the venue keeps the two sides apart (GMO margin holds
    a long and a short of one symbol at once), "" where it nets them.
    """

    account: str
    instrument: str
    quantity: Decimal
    average_price: Decimal | None
    side: str = ""


class BrokerError(Exception):
    pass


class RetryableBrokerError(BrokerError):
    """The venue definitely did not take the request: safe to send it again."""


class OutcomeUnknown(BrokerError):
    """The venue may or may not have acted: look the order up; never send it again."""


class BrokerOverloaded(BrokerError):
    """The venue asks us to slow down (HTTP 429); retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerRejected(BrokerError):
    """Final: the venue refused the order, or the adapter refused it before sending.

    `rule` names the refusal for the order's record ("broker.rejected" for the venue's
    own refusal, "venue.precision" for a number the venue cannot take exactly, ...).
    """

    def __init__(self, message: str, rule: str = "broker.rejected") -> None:
        super().__init__(message)
        self.rule = rule


class Broker(Protocol):
    name: str

    async def submit(self, order: BrokerOrder) -> BrokerAck: ...

    async def cancel(self, client_order_id: str) -> BrokerAck: ...

    async def lookup(self, client_order_id: str) -> BrokerAck | None: ...

    async def positions(self, account: str) -> list[BrokerPositionView]: ...

    def executions(self) -> AsyncIterator[BrokerExecution | BrokerFinancing]: ...
