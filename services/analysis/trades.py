"""Round trips from fills: what a strategy's decisions came to, in money.

A trade runs from flat to flat, per account, strategy and instrument. Fills in the
position's direction open or add to it; fills against it reduce it; the fill that makes it
flat closes the trade. A fill that goes through flat (a reversal) is split: the part up to
flat closes the trade, the rest opens the next, and its commission is shared pro rata
(rounded to the commission's own precision, the rest to the new trade).

Over a whole trade the gross PnL does not depend on how costs are averaged: it is what the
sells brought in minus what the buys cost (sells minus buys for a long, the same for a
short). So it is exact, in the instrument's quote currency, as the fills are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FillRecord:
    """One fill as the order plane streamed it (Order.WatchFills)."""

    seq: int
    fill_id: str
    client_order_id: str
    strategy: str
    account: str
    instrument: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal
    commission: Decimal
    time: datetime

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side == "buy" else -self.quantity


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    strategy: str
    instrument: str
    side: str  # "buy" for a long trade, "sell" for a short one
    quantity: Decimal  # largest absolute position during the trade
    entry_price: Decimal
    exit_price: Decimal
    opened_time: datetime
    closed_time: datetime
    gross_pnl: Decimal
    commission: Decimal
    entry_client_order_id: str
    exit_client_order_id: str

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.commission


@dataclass(slots=True)
class _OpenTrade:
    side: str
    opened_time: datetime
    entry_client_order_id: str
    position: Decimal = _ZERO
    largest: Decimal = _ZERO
    bought: Decimal = _ZERO  # cost of the buys
    sold: Decimal = _ZERO  # proceeds of the sells
    entry_quantity: Decimal = _ZERO
    exit_quantity: Decimal = _ZERO
    commission: Decimal = _ZERO

    def take(self, signed: Decimal, price: Decimal, commission: Decimal) -> None:
        quantity = abs(signed)
        if signed > 0:
            self.bought += quantity * price
        else:
            self.sold += quantity * price
        adds = (signed > 0) == (self.side == "buy")
        if adds:
            self.entry_quantity += quantity
        else:
            self.exit_quantity += quantity
        self.position += signed
        self.largest = max(self.largest, abs(self.position))
        self.commission += commission

    def closed(self, strategy: str, instrument: str, time: datetime, exit_client_order_id: str) -> Trade:
        long = self.side == "buy"
        entry_value, exit_value = (self.bought, self.sold) if long else (self.sold, self.bought)
        return Trade(strategy=strategy, instrument=instrument, side=self.side, quantity=self.largest,
                     entry_price=entry_value / self.entry_quantity, exit_price=exit_value / self.exit_quantity,
                     opened_time=self.opened_time, closed_time=time, gross_pnl=self.sold - self.bought,
                     commission=self.commission, entry_client_order_id=self.entry_client_order_id,
                     exit_client_order_id=exit_client_order_id)


def _share(commission: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """The part's pro-rata commission, rounded to the commission's own precision (so the two
    shares add up to it exactly; the rest goes to the trade the fill opens)."""
    quantum = Decimal(1).scaleb(min(commission.as_tuple().exponent, 0))
    return (commission * part / whole).quantize(quantum)


@dataclass(slots=True)
class TradeBook:
    """Every closed trade and every open one, built fill by fill (in seq order)."""

    closed: list[Trade] = field(default_factory=list)
    _open: dict[tuple[str, str, str], _OpenTrade] = field(default_factory=dict)
    last_fill_seq: int = 0

    def apply_all(self, fills: Iterable[FillRecord]) -> list[Trade]:
        out: list[Trade] = []
        for fill in fills:
            out.extend(self.apply(fill))
        return out

    def apply(self, fill: FillRecord) -> list[Trade]:
        """Books one fill; returns the trades it closed (none, or one)."""
        if fill.seq <= self.last_fill_seq:
            return []  # already booked (a replay overlapping what was loaded)
        self.last_fill_seq = fill.seq
        key = (fill.account, fill.strategy, fill.instrument)
        signed = fill.signed_quantity
        trade = self._open.get(key)
        if trade is None:
            self._open[key] = trade = _OpenTrade(side=fill.side, opened_time=fill.time,
                                                 entry_client_order_id=fill.client_order_id)
        if trade.position == 0 or (signed > 0) == (trade.position > 0) or abs(signed) <= abs(trade.position):
            trade.take(signed, fill.price, fill.commission)
            if trade.position != 0:
                return []
            return [self._close(key, trade, fill)]
        # Through flat: the part up to flat closes this trade, the rest opens the next.
        closing = -trade.position
        share = _share(fill.commission, abs(closing), fill.quantity)
        trade.take(closing, fill.price, share)
        finished = self._close(key, trade, fill)
        self._open[key] = rest = _OpenTrade(side=fill.side, opened_time=fill.time,
                                            entry_client_order_id=fill.client_order_id)
        rest.take(signed - closing, fill.price, fill.commission - share)
        return [finished]

    def _close(self, key: tuple[str, str, str], trade: _OpenTrade, fill: FillRecord) -> Trade:
        del self._open[key]
        done = trade.closed(fill.strategy, fill.instrument, fill.time, fill.client_order_id)
        self.closed.append(done)
        return done

    def open_quantity(self, strategy: str, instrument: str) -> Decimal:
        """The signed position still open, summed over accounts."""
        return sum((t.position for (_, s, i), t in self._open.items() if s == strategy and i == instrument), _ZERO)

    def keys(self) -> set[tuple[str, str]]:
        """Every (strategy, instrument) with a trade, closed or open."""
        return {(t.strategy, t.instrument) for t in self.closed} | {(s, i) for _, s, i in self._open}


__all__ = ["FillRecord", "Trade", "TradeBook"]
