"""Round trips (trades) from fills, by the average-cost method the position plane uses.

A trade opens when a strategy's position in an instrument leaves zero and ends when it
returns to zero; a fill that flips the position ends one trade and opens the next at the
same price. Entry price is the average cost of the position; exit price is the
quantity-weighted average of the closing fills; commission is what the trade's fills paid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal



@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    time: datetime
    strategy: str
    instrument: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal
    commission: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    strategy: str
    instrument: str
    direction: str  # "long" | "short"
    size: Decimal
    entry_time: datetime
    entry_price: Decimal
    exit_time: datetime
    exit_price: Decimal
    gross_pnl: Decimal
    commission: Decimal

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.commission


@dataclass(slots=True)
class _Open:
    quantity: Decimal
    average: Decimal
    opened: datetime
    size: Decimal
    closed_qty: Decimal = Decimal(0)
    closed_value: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    commission: Decimal = Decimal(0)
    last_time: datetime | None = None
    extra: dict = field(default_factory=dict)


def round_trips(fills: Iterable[FillRecord]) -> tuple[list[Trade], dict[tuple[str, str], Decimal]]:
    """Closed trades in the order they closed, and the quantities still open per (strategy, instrument)."""
    book: dict[tuple[str, str], _Open] = {}
    trades: list[Trade] = []
    for fill in fills:
        key = (fill.strategy, fill.instrument)
        signed = fill.quantity if fill.side == "buy" else -fill.quantity  # signed_quantity, without an enum per fill
        position = book.get(key)
        if position is None or position.quantity == 0:
            book[key] = _Open(quantity=signed, average=fill.price, opened=fill.time, size=abs(signed),
                              commission=fill.commission)
            continue
        if (position.quantity > 0) == (signed > 0):  # adding: re-average
            total = position.quantity + signed
            position.average = (position.average * position.quantity + fill.price * signed) / total
            position.quantity = total
            position.size = max(position.size, abs(total))
            position.commission += fill.commission
            continue
        closing = min(abs(signed), abs(position.quantity))
        share = closing / abs(signed)
        direction = 1 if position.quantity > 0 else -1
        position.gross += (fill.price - position.average) * closing * direction
        position.closed_qty += closing
        position.closed_value += fill.price * closing
        position.commission += fill.commission * share
        position.quantity += signed if abs(signed) <= abs(position.quantity) else -position.quantity
        if position.quantity == 0:
            trades.append(Trade(strategy=fill.strategy, instrument=fill.instrument,
                                direction="long" if direction > 0 else "short", size=position.size,
                                entry_time=position.opened, entry_price=position.average, exit_time=fill.time,
                                exit_price=position.closed_value / position.closed_qty, gross_pnl=position.gross,
                                commission=position.commission))
            remainder = abs(signed) - closing
            if remainder > 0:  # flipped through zero: the rest opens a new trade at this price
                book[key] = _Open(quantity=remainder if signed > 0 else -remainder, average=fill.price,
                                  opened=fill.time, size=remainder, commission=fill.commission * (1 - share))
            else:
                del book[key]
    return trades, {key: pos.quantity for key, pos in book.items() if pos.quantity != 0}
