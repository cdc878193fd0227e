"""The position ledger: pure domain logic, no I/O, Decimal everywhere.

Positions are kept per (account, instrument, strategy). PnL is computed by the
AVERAGE-COST method, the same way for every fill:

- opening from flat: the average price is the fill price;
- adding to a position re-averages: avg = (avg * |qty| + price * fill_qty) / (|qty| + fill_qty);
- reducing realizes (exit - avg) * closed_qty for a long and (avg - exit) * closed_qty for a
  short; the average price of what stays open does not change;
- flipping through zero closes the old side fully at the fill price (realizing as above)
  and opens the remainder at the fill price, with opened_time = the fill's time.

Commission is accumulated separately and never mixed into the average price or the
realized PnL ("realized before commission", as the contract says).

Unrealized PnL marks a long at the bid and a short at the ask (what closing it now
would get): long (bid - avg) * qty, short (avg - ask) * |qty|.

A round trip starts when a position leaves flat and ends when it returns to flat or
flips. Its net PnL = realized over the trip - commission over the trip decides a win
(> 0) or a loss (<= 0); a win resets the strategy's consecutive losses. The whole
commission of a flipping fill counts toward the trip it closes (the new trip starts
with none), which keeps every figure exact instead of splitting a commission pro rata.

Account figures: balance = starting cash + realized - commission; equity = balance +
unrealized; peak equity (starting at the starting cash); drawdown = peak - equity;
drawdown_fraction = drawdown / peak; max drawdown. They update on every fill and mark.

Arithmetic runs in a 60-digit decimal context, so the only rounding anywhere is in the
re-averaging division (a repeating decimal cannot be stored exactly); values are
never quantized here, only for display.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, localcontext

from services.common.vocabulary import signed_quantity

ZERO = Decimal(0)
_LEDGER_CONTEXT = Context(prec=60)

PositionKey = tuple[str, str, str]  # (account, instrument, strategy)


@dataclass(frozen=True, slots=True)
class LedgerFill:
    """One execution as the ledger sees it. `quantity` is positive; `side` says the direction."""

    fill_id: str
    account: str
    instrument: str
    strategy: str
    side: str  # "buy" or "sell"
    quantity: Decimal
    price: Decimal
    commission: Decimal
    time: datetime

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"fill {self.fill_id}: side {self.side!r} is not buy or sell")
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise ValueError(f"fill {self.fill_id}: quantity {self.quantity} must be a positive number")
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"fill {self.fill_id}: price {self.price} must be a positive number")
        if not self.commission.is_finite():
            raise ValueError(f"fill {self.fill_id}: commission {self.commission} must be a finite number")

    @property
    def signed_quantity(self) -> Decimal:
        return signed_quantity(self.side, self.quantity)


@dataclass(frozen=True, slots=True)
class Mark:
    """The latest quote of an instrument, used for unrealized PnL."""

    instrument: str
    bid: Decimal
    ask: Decimal
    time: datetime


@dataclass(slots=True)
class Position:
    account: str
    instrument: str
    strategy: str
    quantity: Decimal = ZERO
    average_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    opened_time: datetime | None = None
    updated_time: datetime | None = None
    # The open round trip, so its net result is known when it ends.
    trip_realized: Decimal = ZERO
    trip_commission: Decimal = ZERO

    @property
    def key(self) -> PositionKey:
        return (self.account, self.instrument, self.strategy)

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    def unrealized_at(self, mark: Mark | None) -> Decimal:
        with localcontext(_LEDGER_CONTEXT):
            return self._unrealized(mark)

    def _unrealized(self, mark: Mark | None) -> Decimal:
        """Caller holds the ledger context (the hot path enters it once, not per position)."""
        if mark is None or self.quantity == 0 or self.average_price is None:
            return ZERO
        if self.quantity > 0:
            return (mark.bid - self.average_price) * self.quantity
        return (self.average_price - mark.ask) * -self.quantity

    def mark_price(self, mark: Mark | None) -> Decimal | None:
        """The side of the quote this position would close at; None when flat or unmarked."""
        if mark is None or self.quantity == 0:
            return None
        return mark.bid if self.quantity > 0 else mark.ask


@dataclass(slots=True)
class StrategyRecord:
    account: str
    slug: str
    wins: int = 0
    losses: int = 0
    consecutive_losses: int = 0


@dataclass(slots=True)
class AccountRecord:
    account: str
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    peak_equity: Decimal | None = None  # None until the first figure: then the starting cash
    max_drawdown: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class AccountFigures:
    account: str
    balance: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    peak_equity: Decimal
    drawdown: Decimal
    drawdown_fraction: Decimal
    max_drawdown: Decimal


@dataclass(frozen=True, slots=True)
class StrategyFigures:
    slug: str
    realized_pnl_net: Decimal  # realized - commission, over the strategy's instruments
    unrealized_pnl: Decimal
    consecutive_losses: int
    wins: int
    losses: int


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A round trip that ended with this fill."""

    net_pnl: Decimal
    won: bool


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What one fill changed: copies, safe to store after the ledger moves on."""

    position: Position
    strategy: StrategyRecord
    account: AccountRecord
    realized_pnl: Decimal  # realized by this fill
    round_trip: RoundTrip | None
    figures: AccountFigures


@dataclass(slots=True)
class _AccountBook:
    record: AccountRecord
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)  # (instrument, strategy)
    # Unrealized PnL per instrument, refreshed only for the instrument a fill or mark touches,
    # so equity costs O(instruments) instead of O(positions) per event.
    unrealized: dict[str, Decimal] = field(default_factory=dict)
    by_instrument: dict[str, list[Position]] = field(default_factory=dict)

    def add(self, position: Position) -> None:
        self.positions[(position.instrument, position.strategy)] = position
        self.by_instrument.setdefault(position.instrument, []).append(position)


class Ledger:
    """Every position of every account, with the figures derived from them."""

    def __init__(self, *, starting_cash: Decimal) -> None:
        if not starting_cash.is_finite() or starting_cash <= 0:
            raise ValueError(f"starting cash {starting_cash} must be positive")
        self.starting_cash = starting_cash
        self._accounts: dict[str, _AccountBook] = {}
        self._strategies: dict[tuple[str, str], StrategyRecord] = {}
        self._marks: dict[str, Mark] = {}

    # ----------------------------------------------------------------- fills

    def apply_fill(self, fill: LedgerFill) -> FillOutcome:
        book = self._book(fill.account)
        position = book.positions.get((fill.instrument, fill.strategy))
        if position is None:
            position = Position(fill.account, fill.instrument, fill.strategy)
            book.add(position)
        strategy = self._strategy(fill.account, fill.strategy)
        with localcontext(_LEDGER_CONTEXT):
            realized, trip = _apply_to_position(position, fill)
            book.record.realized_pnl += realized
            book.record.commission += fill.commission
            if trip is not None:
                if trip.won:
                    strategy.wins += 1
                    strategy.consecutive_losses = 0
                else:
                    strategy.losses += 1
                    strategy.consecutive_losses += 1
            self._refresh_unrealized(book, fill.instrument)
            figures = self._update_figures(book)
        return FillOutcome(position=copy.copy(position), strategy=copy.copy(strategy),
                           account=copy.copy(book.record), realized_pnl=realized, round_trip=trip,
                           figures=figures)

    # ----------------------------------------------------------------- marks

    def apply_mark(self, mark: Mark) -> list[AccountFigures]:
        """Records the mark; returns the new figures of every account holding the instrument."""
        self._marks[mark.instrument] = mark
        changed: list[AccountFigures] = []
        for book in self._accounts.values():
            holding = False
            for position in book.by_instrument.get(mark.instrument, ()):
                if position.quantity != 0:
                    position.updated_time = mark.time
                    holding = True
            if holding:
                with localcontext(_LEDGER_CONTEXT):
                    self._refresh_unrealized(book, mark.instrument)
                changed.append(self._update_figures(book))
        return changed

    def mark(self, instrument: str) -> Mark | None:
        return self._marks.get(instrument)

    def marks(self) -> list[Mark]:
        return list(self._marks.values())

    # ----------------------------------------------------------------- reading

    def accounts(self) -> list[str]:
        return sorted(self._accounts)

    def position(self, account: str, instrument: str, strategy: str) -> Position | None:
        book = self._accounts.get(account)
        return None if book is None else book.positions.get((instrument, strategy))

    def positions(self, account: str, *, strategies: Iterable[str] = (), instruments: Iterable[str] = (),
                  include_flat: bool = False) -> list[Position]:
        """Positions of `account` matching the filters (empty = all), sorted by strategy then instrument."""
        book = self._accounts.get(account)
        if book is None:
            return []
        wanted_strategies = frozenset(strategies)
        wanted_instruments = frozenset(instruments)
        found = [p for p in book.positions.values()
                 if (include_flat or p.quantity != 0)
                 and (not wanted_strategies or p.strategy in wanted_strategies)
                 and (not wanted_instruments or p.instrument in wanted_instruments)]
        found.sort(key=lambda p: (p.strategy, p.instrument))
        return found

    def all_positions(self) -> Iterator[Position]:
        for book in self._accounts.values():
            yield from book.positions.values()

    def unrealized_pnl(self, position: Position) -> Decimal:
        return position.unrealized_at(self._marks.get(position.instrument))

    def net_quantities(self, account: str) -> dict[str, Decimal]:
        """Net quantity per instrument over every strategy: what a broker (netting) would show."""
        totals: dict[str, Decimal] = {}
        book = self._accounts.get(account)
        for position in (book.positions.values() if book else ()):
            totals[position.instrument] = totals.get(position.instrument, ZERO) + position.quantity
        return totals

    def strategy_figures(self, account: str, slug: str) -> StrategyFigures:
        record = self._strategies.get((account, slug)) or StrategyRecord(account, slug)
        book = self._accounts.get(account)
        realized = unrealized = ZERO
        with localcontext(_LEDGER_CONTEXT):
            for position in (book.positions.values() if book else ()):
                if position.strategy == slug:
                    realized += position.realized_pnl - position.commission
                    unrealized += self.unrealized_pnl(position)
        return StrategyFigures(slug=slug, realized_pnl_net=realized, unrealized_pnl=unrealized,
                               consecutive_losses=record.consecutive_losses, wins=record.wins,
                               losses=record.losses)

    def strategy_records(self) -> list[StrategyRecord]:
        return list(self._strategies.values())

    def account_record(self, account: str) -> AccountRecord:
        book = self._accounts.get(account)
        return copy.copy(book.record) if book else AccountRecord(account)

    def account_figures(self, account: str) -> AccountFigures:
        """Current figures; an account with no fills yet stands at the starting cash."""
        book = self._accounts.get(account)
        if book is None:
            cash = self.starting_cash
            return AccountFigures(account=account, balance=cash, unrealized_pnl=ZERO, equity=cash,
                                  peak_equity=cash, drawdown=ZERO, drawdown_fraction=ZERO, max_drawdown=ZERO)
        with localcontext(_LEDGER_CONTEXT):
            return self._figures(book)

    # ----------------------------------------------------------------- restore

    def restore(self, *, positions: Iterable[Position], strategies: Iterable[StrategyRecord],
                accounts: Iterable[AccountRecord], marks: Iterable[Mark]) -> None:
        """Loads stored state into an empty ledger (after a restart)."""
        if self._accounts or self._strategies:
            raise RuntimeError("restore needs an empty ledger")
        for record in accounts:
            self._accounts[record.account] = _AccountBook(record=copy.copy(record))
        for position in positions:
            self._book(position.account).add(copy.copy(position))
        for record in strategies:
            self._strategies[(record.account, record.slug)] = copy.copy(record)
        for mark in marks:
            self._marks[mark.instrument] = mark
        with localcontext(_LEDGER_CONTEXT):
            for book in self._accounts.values():
                for instrument in book.by_instrument:
                    self._refresh_unrealized(book, instrument)

    # ----------------------------------------------------------------- internals

    def _book(self, account: str) -> _AccountBook:
        book = self._accounts.get(account)
        if book is None:
            book = self._accounts[account] = _AccountBook(record=AccountRecord(account))
        return book

    def _strategy(self, account: str, slug: str) -> StrategyRecord:
        record = self._strategies.get((account, slug))
        if record is None:
            record = self._strategies[(account, slug)] = StrategyRecord(account, slug)
        return record

    def _figures(self, book: _AccountBook) -> AccountFigures:
        record = book.record
        balance = self.starting_cash + record.realized_pnl - record.commission
        unrealized = sum(book.unrealized.values(), ZERO)
        equity = balance + unrealized
        peak = max(record.peak_equity if record.peak_equity is not None else self.starting_cash, equity)
        drawdown = peak - equity
        fraction = drawdown / peak if peak > 0 else ZERO
        return AccountFigures(account=record.account, balance=balance, unrealized_pnl=unrealized, equity=equity,
                              peak_equity=peak, drawdown=drawdown, drawdown_fraction=fraction,
                              max_drawdown=max(record.max_drawdown, drawdown))

    def _refresh_unrealized(self, book: _AccountBook, instrument: str) -> None:
        mark = self._marks.get(instrument)
        book.unrealized[instrument] = sum((p._unrealized(mark) for p in book.by_instrument.get(instrument, ())), ZERO)

    def _update_figures(self, book: _AccountBook) -> AccountFigures:
        with localcontext(_LEDGER_CONTEXT):
            figures = self._figures(book)
        book.record.peak_equity = figures.peak_equity
        book.record.max_drawdown = figures.max_drawdown
        return figures


def _apply_to_position(position: Position, fill: LedgerFill) -> tuple[Decimal, RoundTrip | None]:
    """Average-cost update of one position; returns (realized by this fill, round trip ended)."""
    old = position.quantity
    signed = fill.signed_quantity
    realized = ZERO
    trip: RoundTrip | None = None
    position.commission += fill.commission
    position.updated_time = fill.time
    if old == 0:
        _open(position, signed, fill)
        position.trip_commission = fill.commission
    elif (old > 0) == (signed > 0):
        held = abs(old)
        position.average_price = (position.average_price * held + fill.price * fill.quantity) / (held + fill.quantity)
        position.quantity = old + signed
        position.trip_commission += fill.commission
    else:
        closed = min(abs(old), fill.quantity)
        avg = position.average_price
        realized = (fill.price - avg) * closed if old > 0 else (avg - fill.price) * closed
        position.realized_pnl += realized
        position.trip_realized += realized
        position.trip_commission += fill.commission
        if fill.quantity < abs(old):
            position.quantity = old + signed  # partial close: the average stays
        else:
            net = position.trip_realized - position.trip_commission
            trip = RoundTrip(net_pnl=net, won=net > 0)
            remainder = fill.quantity - closed
            position.trip_realized = ZERO
            position.trip_commission = ZERO
            if remainder > 0:
                _open(position, remainder if signed > 0 else -remainder, fill)
            else:
                position.quantity = ZERO
                position.average_price = None
                position.opened_time = None
    return realized, trip


def _open(position: Position, signed: Decimal, fill: LedgerFill) -> None:
    position.quantity = signed
    position.average_price = fill.price
    position.opened_time = fill.time
    position.trip_realized = ZERO
