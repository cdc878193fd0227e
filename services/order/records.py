"""What the order plane remembers: orders, fills, and the events streamed about them."""

from __future__ import annotations

import dataclasses
import json
import operator

import orjson
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.common.validation import MAX_INT64
from services.common.vocabulary import OrderState, OrderType, Side, StrategyRole, TimeInForce
from services.order.intents import Intent


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderRecord:
    number: int
    intent: Intent
    state: OrderState
    created_time: datetime
    updated_time: datetime
    filled_quantity: Decimal = Decimal(0)
    average_fill_price: Decimal | None = None
    commission: Decimal = Decimal(0)
    reject_rule: str = ""
    reason: str = ""
    broker_order_id: str = ""
    broker: str = ""

    @property
    def order_id(self) -> str:
        return order_id_of(self.number)

    def with_changes(self, **changes) -> "OrderRecord":
        # dataclasses.replace, without its per-call look at the fields (an order changes a few times
        # per fill): every field is an init field, so the copy is the same; an unknown name still
        # fails in __init__.
        values = dict(zip(_ORDER_FIELDS, _order_values(self)))
        values.update(changes)
        return OrderRecord(**values)


_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(OrderRecord))  # all init fields, as replace copies
_order_values = operator.attrgetter(*_ORDER_FIELDS)


@dataclass(frozen=True, kw_only=True, slots=True)
class FinancingRecord:
    """Financing a venue reported on one trade, booked to the strategy whose entry opened it."""

    seq: int  # 0 until stored
    financing_id: str
    account: str
    instrument: str
    strategy_slug: str
    amount: Decimal
    currency: str
    time: datetime
    broker_fill_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FillRecord:
    seq: int
    order_id: str
    client_order_id: str
    strategy_slug: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    time: datetime
    broker_fill_id: str

    def with_seq(self, seq: int) -> "FillRecord":
        values = dict(zip(_FILL_FIELDS, _fill_values(self)))  # dataclasses.replace, as in with_changes
        values["seq"] = seq
        return FillRecord(**values)

    @property
    def fill_id(self) -> str:
        return f"fill-{self.seq:012d}"

    @property
    def signed_quantity(self) -> Decimal:
        return Side(self.side).signed(self.quantity)


_FILL_FIELDS = tuple(f.name for f in dataclasses.fields(FillRecord))
_fill_values = operator.attrgetter(*_FILL_FIELDS)


@dataclass(frozen=True, slots=True)
class TraceRef:
    traceparent: str = ""
    tracestate: str = ""


@dataclass(frozen=True, slots=True)
class OrderEvent:
    order: OrderRecord
    trace: TraceRef


@dataclass(frozen=True, slots=True)
class FillEvent:
    fill: FillRecord
    trace: TraceRef


def order_id_of(number: int) -> str:
    return f"ord-{number:012d}"


def number_of(order_id: str) -> int | None:
    """The order number in "ord-000000000042", or None when the text is not an order id.

    ASCII digits only (str.isdigit also takes "١٢٣"), and the number must fit the bigint key.
    """
    digits = order_id[4:] if order_id.startswith("ord-") else ""
    if not (0 < len(digits) <= 19 and digits.isascii() and digits.isdigit()) or int(digits) > MAX_INT64:
        return None
    return int(digits)


def order_to_json(order: OrderRecord) -> str:
    """A snapshot of the order for the event log (WatchOrders replays it after a restart).

    orjson writes the dataclasses as they are (every field, the intent nested, enums as their
    words, times in RFC 3339); Decimals go as exact strings. Every order event writes one,
    so this is on the hot path.
    """
    return orjson.dumps(order, default=_exact).decode()


def _exact(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not part of an order snapshot")


def order_from_json(text: str) -> OrderRecord:
    body = json.loads(text)
    raw = body.pop("intent")
    for name in ("quantity", "limit_price", "stop_price", "stop_loss_distance", "take_profit_distance",
                 "trailing_stop_distance", "trail_distance"):
        raw[name] = None if raw.get(name) is None else Decimal(raw[name])  # older snapshots lack the last four
    # Snapshots written before decision_time existed have no key: such an order had none.
    decision_time = raw.get("decision_time")
    raw["decision_time"] = None if decision_time is None else datetime.fromisoformat(decision_time)
    raw.setdefault("no_pyramiding", False)  # snapshots written before it existed
    raw.update(role=StrategyRole(raw["role"]), side=Side(raw["side"]), order_type=OrderType(raw["order_type"]),
               time_in_force=TimeInForce(raw["time_in_force"]))
    intent = Intent(**raw)
    return OrderRecord(
        number=body["number"], intent=intent, state=OrderState(body["state"]),
        created_time=datetime.fromisoformat(body["created_time"]),
        updated_time=datetime.fromisoformat(body["updated_time"]),
        filled_quantity=Decimal(body["filled_quantity"]),
        average_fill_price=None if body["average_fill_price"] is None else Decimal(body["average_fill_price"]),
        commission=Decimal(body["commission"]), reject_rule=body["reject_rule"], reason=body["reason"],
        broker_order_id=body["broker_order_id"], broker=body["broker"],
    )
