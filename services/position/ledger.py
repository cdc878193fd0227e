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

Money in the account's currency (services/position/currency.py has the rules): a
position's realized PnL, commission and unrealized PnL are in its instrument's quote
currency; each fill's realized PnL and commission are converted into the account's
currency at the newest quote of the conversion pair when the fill is booked (its
`Booking` records the quote), unrealized PnL at the current quote on every mark. Money
with no quote to convert it yet is held as pending in its own currency, listed in the
account figures as unconverted, and converted at the first quote that arrives.

Account figures, all in the account's currency: balance = starting cash + realized -
commission + financing; equity = balance + unrealized; peak equity (starting at the
starting cash); drawdown = peak - equity; drawdown_fraction = drawdown / peak; max
drawdown. They update on every fill and mark. Unconverted money is in none of them.

Trading days (services/common/tradingday.py): the ledger's day is the trading day of the
newest fill or quote it has seen (market time, so a backtest rolls days exactly as live
does). Crossing a day boundary is the rollover: financing is charged on every open
position by `financing` rates (services/position/financing.py). Each account keeps its
figures per day (services/position/days.py) for the daily loss limit and recent drawdown.

Durable changes that no fill carries (financing at a rollover, pending money converted
by a quote) collect in `Bookkeeping` until the engine stores them (`take_bookkeeping`).

Arithmetic runs in a 60-digit decimal context, so the only rounding anywhere is in the
re-averaging division (a repeating decimal cannot be stored exactly); values are
never quantized here, only for display.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal, localcontext

from services.common.tradingday import DayFigures, TradingCalendar, TradingDay
from services.position.currency import Converter, Rate, quote_currency
from services.position.days import DayBook
from services.position.financing import NO_RATES, FinancingCharge, FinancingRates, rollover_charge
from services.position.records import (  # noqa: F401 - the records, imported from here by callers
    _LEDGER_CONTEXT, ZERO, AccountFigures, AccountRecord, Booking, Bookkeeping, FillOutcome, LedgerFill, Mark,
    Position, PositionKey, RoundTrip, StrategyFigures, StrategyRecord,
)


@dataclass(slots=True)
class _AccountBook:
    record: AccountRecord
    days: DayBook = field(default_factory=DayBook)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)  # (instrument, strategy)
    # Unrealized PnL per instrument in the account's currency, refreshed only for the instrument a
    # fill or mark touches, so equity costs O(instruments) instead of O(positions) per event.
    unrealized: dict[str, Decimal] = field(default_factory=dict)
    # Unrealized PnL per instrument that no quote converts yet, in the quote currency.
    unconverted_unrealized: dict[str, Decimal] = field(default_factory=dict)
    pending: dict[str, Decimal] = field(default_factory=dict)  # pending booked money per currency
    by_instrument: dict[str, list[Position]] = field(default_factory=dict)
    last_equity: Decimal | None = None
    # The figures as last built, while nothing they are made of has changed (None: build them
    # again). Each input (the record's money, unrealized, unconverted, pending) drops them when
    # it changes, so a read between changes (an intent's exposure, the engine's sample after a
    # mark) returns them instead of building the same figures twice.
    figures: AccountFigures | None = None
    balance: Decimal | None = None  # likewise: the balance while the record's money has not changed

    def add(self, position: Position) -> None:
        self.positions[(position.instrument, position.strategy)] = position
        self.by_instrument.setdefault(position.instrument, []).append(position)


class Ledger:
    """Every position of every account, with the figures derived from them."""

    def __init__(self, *, starting_cash: Decimal, currency: str = "JPY", calendar: TradingCalendar | None = None,
                 financing: FinancingRates = NO_RATES) -> None:
        if not starting_cash.is_finite() or starting_cash <= 0:
            raise ValueError(f"starting cash {starting_cash} must be positive")
        self.starting_cash = starting_cash
        self.currency = currency
        self.calendar = calendar or TradingCalendar.fx()
        self.financing_rates = financing
        self._converter = Converter(currency)
        self._accounts: dict[str, _AccountBook] = {}
        self._strategies: dict[tuple[str, str], StrategyRecord] = {}
        self._marks: dict[str, Mark] = {}
        self._trading_day: TradingDay | None = None
        self._pending: dict[str, list[Booking]] = {}  # by currency, oldest first
        self._bookkeeping = Bookkeeping()
        self._touched: set[str] = set()  # accounts whose money a rollover or a conversion moved
        self._converts: dict[str, str | None] = {}  # Converter.converts by instrument (a pure function of it)

    # ----------------------------------------------------------------- fills

    def apply_fill(self, fill: LedgerFill) -> FillOutcome:
        self._advance(fill.time)
        book = self._book(fill.account)
        position = book.positions.get((fill.instrument, fill.strategy))
        if position is None:
            position = Position(fill.account, fill.instrument, fill.strategy)
            book.add(position)
        strategy = self._strategy(fill.account, fill.strategy)
        with localcontext(_LEDGER_CONTEXT):
            realized, trip = _apply_to_position(position, fill)
            booking = self._book_money(book, Booking(
                kind="fill", key=fill.fill_id, account=fill.account, instrument=fill.instrument,
                strategy=fill.strategy, time=fill.time, currency=quote_currency(fill.instrument), pnl=realized,
                commission=fill.commission))
            if trip is not None:
                if trip.won:
                    strategy.wins += 1
                    strategy.consecutive_losses = 0
                else:
                    strategy.losses += 1
                    strategy.consecutive_losses += 1
            self._refresh_unrealized(book, fill.instrument)
            figures = self._update_figures(book)
        return FillOutcome(position=_copy_position(position), strategy=_copy_strategy(strategy),
                           account=_copy_account(book.record), realized_pnl=realized, round_trip=trip,
                           figures=figures, booking=booking)

    # ----------------------------------------------------------------- financing

    def apply_financing(self, charge: FinancingCharge) -> Booking:
        """Books a charge the venue reported (QUANTMESH_FINANCING_SOURCE=venue)."""
        self._advance(charge.time)
        book = self._book(charge.account)
        with localcontext(_LEDGER_CONTEXT):
            booking = self._charge(book, charge)
            self._update_figures(book)
        return booking

    def _charge(self, book: _AccountBook, charge: FinancingCharge) -> Booking:
        if (charge.instrument, charge.strategy) not in book.positions:
            book.add(Position(charge.account, charge.instrument, charge.strategy))
        booking = self._book_money(book, Booking(
            kind="financing", key=charge.charge_id, account=charge.account, instrument=charge.instrument,
            strategy=charge.strategy, time=charge.time, currency=charge.currency, pnl=charge.amount,
            commission=ZERO))
        self._keep(booking)
        self._bookkeeping.financing.append((charge, booking))
        return booking

    def _roll(self, rollover: datetime) -> None:
        """The day boundary: every open position is charged its rate's financing."""
        if not self.financing_rates:
            return
        for book in self._accounts.values():
            charged = False
            for position in list(book.positions.values()):
                if position.quantity == 0:
                    continue
                price = position.mark_price(self._marks.get(position.instrument)) or position.average_price
                charge = rollover_charge(account=position.account, instrument=position.instrument,
                                         strategy=position.strategy, quantity=position.quantity, price=price,
                                         rollover=rollover, rates=self.financing_rates,
                                         currency=quote_currency(position.instrument))
                if charge is not None:
                    self._charge(book, charge)
                    charged = True
            if charged:
                self._update_figures(book)

    # ----------------------------------------------------------------- marks

    def apply_mark(self, mark: Mark) -> list[AccountFigures]:
        """Records the mark; returns the new figures of every account whose money it moved."""
        self._touched.clear()
        self._advance(mark.time)  # before the quote is taken: a rollover is charged at the quotes before it
        self._marks[mark.instrument] = mark
        converts = self._converts.get(mark.instrument, _UNKNOWN)
        if converts is _UNKNOWN:
            converts = self._converts[mark.instrument] = self._converter.converts(mark.instrument)
        changed: list[AccountFigures] = []
        with localcontext(_LEDGER_CONTEXT):
            if converts is not None and converts in self._pending:
                self._convert_pending(converts)
            for book in self._accounts.values():
                touched = False
                for position in book.by_instrument.get(mark.instrument, ()):
                    if position.quantity != 0:
                        position.updated_time = mark.time
                        touched = True
                if touched:
                    self._refresh_unrealized(book, mark.instrument)
                if converts is not None:  # a new rate moves every instrument quoted in that currency
                    for instrument in book.by_instrument:
                        if instrument != mark.instrument and quote_currency(instrument) == converts \
                                and self._holds(book, instrument):
                            self._refresh_unrealized(book, instrument)
                            touched = True
                if touched or book.record.account in self._touched:
                    changed.append(self._update_figures(book))
        return changed

    def mark(self, instrument: str) -> Mark | None:
        return self._marks.get(instrument)

    def marks(self) -> list[Mark]:
        return list(self._marks.values())

    # ----------------------------------------------------------------- reading

    @property
    def trading_day(self) -> TradingDay | None:
        """The trading day of the newest fill or quote seen; None before the first."""
        return self._trading_day

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

    def open_position_count(self, account: str) -> int:
        """Open (strategy, instrument) positions of the account: what max_open_positions counts."""
        book = self._accounts.get(account)
        return sum(1 for p in book.positions.values() if p.quantity != 0) if book else 0

    def unrealized_pnl(self, position: Position) -> Decimal:
        """In the quote currency."""
        return position.unrealized_at(self._marks.get(position.instrument))

    def unrealized_pnl_account(self, position: Position) -> Decimal | None:
        """In the account's currency at the current quote; None when no quote converts it yet."""
        unrealized = self.unrealized_pnl(position)
        rate = self._rate(position.instrument)
        if rate is None:
            return None if unrealized != 0 else ZERO
        with localcontext(_LEDGER_CONTEXT):
            return rate.convert(unrealized)

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
                    realized += position.net_pnl_account
                    unrealized += self.unrealized_pnl_account(position) or ZERO
        return StrategyFigures(slug=slug, realized_pnl_net=realized, unrealized_pnl=unrealized,
                               consecutive_losses=record.consecutive_losses, wins=record.wins,
                               losses=record.losses)

    def consecutive_losses(self, account: str, slug: str) -> int:
        """The strategy's losing round trips in a row: its figures' count, without their PnL sums."""
        record = self._strategies.get((account, slug))
        return record.consecutive_losses if record is not None else 0

    def strategy_records(self) -> list[StrategyRecord]:
        return list(self._strategies.values())

    def account_record(self, account: str) -> AccountRecord:
        book = self._accounts.get(account)
        return _copy_account(book.record) if book else AccountRecord(account)

    def account_figures(self, account: str) -> AccountFigures:
        """Current figures; an account with no fills yet stands at the starting cash."""
        book = self._accounts.get(account)
        if book is None:
            cash = self.starting_cash
            return AccountFigures(account=account, balance=cash, unrealized_pnl=ZERO, equity=cash,
                                  peak_equity=cash, drawdown=ZERO, drawdown_fraction=ZERO, max_drawdown=ZERO)
        figures = book.figures
        if figures is None:
            with localcontext(_LEDGER_CONTEXT):
                figures = book.figures = self._figures(book)
        return figures

    def trading_days(self, account: str, *, equity: Decimal | None = None) -> tuple[DayFigures, ...]:
        """The account's last days, oldest first, ending with the current one (empty before any event).

        `equity`: the account's equity now, when the caller holds its figures already (not built twice)."""
        if equity is None:
            equity = self.account_figures(account).equity
        book = self._accounts.get(account)
        return (book.days if book else DayBook()).figures(self._trading_day, equity)

    def kept_days(self, account: str, *, last: int) -> list[DayFigures]:
        """The newest `last` days the account has entries for (what a change is stored with)."""
        book = self._accounts.get(account)
        return book.days.last(last) if book else []

    def unconverted(self, account: str) -> tuple[tuple[str, Decimal, str], ...]:
        """(currency, amount, the instrument whose quote would convert it) the account's figures leave out."""
        book = self._accounts.get(account)
        if book is None:
            return ()
        with localcontext(_LEDGER_CONTEXT):  # as in the figures, without building them all (asked at each intent)
            missing = self._unconverted(book)
        return tuple((currency, amount, self._converter.missing_pair(currency)) for currency, amount in missing)

    def pending(self) -> list[Booking]:
        return [b for bookings in self._pending.values() for b in bookings]

    def has_bookkeeping(self) -> bool:
        return bool(self._bookkeeping)

    def take_bookkeeping(self) -> Bookkeeping:
        """Hands the durable changes made since the last call to the caller, who stores them."""
        taken, self._bookkeeping = self._bookkeeping, Bookkeeping()
        return taken

    # ----------------------------------------------------------------- restore

    def restore(self, *, positions: Iterable[Position], strategies: Iterable[StrategyRecord],
                accounts: Iterable[AccountRecord], marks: Iterable[Mark], pending: Iterable[Booking] = (),
                days: Iterable[tuple[str, DayFigures]] = (), trading_day_start: datetime | None = None) -> None:
        """Loads stored state into an empty ledger (after a restart)."""
        if self._accounts or self._strategies:
            raise RuntimeError("restore needs an empty ledger")
        for record in accounts:
            self._accounts[record.account] = _AccountBook(record=_copy_account(record))
        for position in positions:
            self._book(position.account).add(_copy_position(position))
        for record in strategies:
            self._strategies[(record.account, record.slug)] = _copy_strategy(record)
        for mark in marks:
            self._marks[mark.instrument] = mark
        by_account: dict[str, list[DayFigures]] = {}
        for account, figures in days:
            by_account.setdefault(account, []).append(figures)
        for account, kept in by_account.items():
            self._book(account).days = DayBook(kept)
        for booking in pending:
            self._hold(self._book(booking.account), booking)
        if trading_day_start is not None:
            self._trading_day = self.calendar.day_of(trading_day_start)
        with localcontext(_LEDGER_CONTEXT):
            for book in self._accounts.values():
                for instrument in book.by_instrument:
                    self._refresh_unrealized(book, instrument)
                book.figures = None
                book.last_equity = self._figures(book).equity

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

    def _advance(self, moment: datetime) -> None:
        """Moves the ledger's day to the one of `moment`, charging financing at each rollover crossed."""
        day = self._trading_day
        if day is not None and moment < day.end:
            return  # the same day, or a late event that counts in the newest day
        if day is not None:
            with localcontext(_LEDGER_CONTEXT):
                for rollover in self.calendar.rollovers(day.start, moment):
                    self._trading_day = self.calendar.day_of(rollover)
                    self._roll(rollover)
        self._trading_day = self.calendar.day_of(moment)

    def _rate(self, instrument: str) -> Rate | None:
        return self._converter.rate(quote_currency(instrument), self._marks)

    def _book_money(self, book: _AccountBook, draft: Booking) -> Booking:
        """Converts `draft` at the newest quote and credits it, or holds it as pending."""
        rate = self._converter.rate(draft.currency, self._marks)
        if rate is None:
            if draft.pnl == 0 and draft.commission == 0:
                return replace(draft, pnl_account=ZERO, commission_account=ZERO)  # nothing to convert
            self._hold(book, draft)
            return replace(draft, pending=True)
        booking = replace(draft, rate=rate, pnl_account=rate.convert(draft.pnl),
                          commission_account=rate.convert_cost(draft.commission))
        self._credit(book, booking)
        return booking

    def _hold(self, book: _AccountBook, booking: Booking) -> None:
        self._pending.setdefault(booking.currency, []).append(replace(booking, pending=True))
        book.pending[booking.currency] = book.pending.get(booking.currency, ZERO) + booking.net
        book.figures = None

    def _convert_pending(self, currency: str) -> None:
        """The first quote for `currency`: every held booking converts at it, oldest first."""
        rate = self._converter.rate(currency, self._marks)
        for held in self._pending.pop(currency, ()):
            book = self._book(held.account)
            book.pending[currency] -= held.net
            book.figures = None
            if book.pending[currency] == 0:
                del book.pending[currency]
            booking = replace(held, pending=False, rate=rate, pnl_account=rate.convert(held.pnl),
                              commission_account=rate.convert_cost(held.commission))
            if (held.instrument, held.strategy) not in book.positions:
                book.add(Position(held.account, held.instrument, held.strategy))
            self._credit(book, booking)
            self._keep(booking)
            self._bookkeeping.conversions.append(booking)

    def _keep(self, booking: Booking) -> None:
        self._bookkeeping.positions.add((booking.account, booking.instrument, booking.strategy))
        self._bookkeeping.accounts.add(booking.account)
        self._touched.add(booking.account)

    def _credit(self, book: _AccountBook, booking: Booking) -> None:
        position = book.positions[(booking.instrument, booking.strategy)]
        book.figures = book.balance = None
        if booking.kind == "financing":
            position.financing += booking.pnl_account
            book.record.financing += booking.pnl_account
        else:
            position.realized_pnl_account += booking.pnl_account
            position.commission_account += booking.commission_account
            book.record.realized_pnl += booking.pnl_account
            book.record.commission += booking.commission_account
        book.days.book(self._trading_day, booking.net_account, self._equity_before(book))

    def _equity_before(self, book: _AccountBook) -> Decimal:
        return book.last_equity if book.last_equity is not None else self.starting_cash

    @staticmethod
    def _holds(book: _AccountBook, instrument: str) -> bool:
        return any(p.quantity != 0 for p in book.by_instrument.get(instrument, ()))

    def _figures(self, book: _AccountBook) -> AccountFigures:
        """Caller holds the ledger context."""
        record = book.record
        balance = book.balance
        if balance is None:
            balance = book.balance = self.starting_cash + record.realized_pnl - record.commission + record.financing
        unrealized = ZERO
        for amount in book.unrealized.values():  # as sum(values, ZERO) adds, without its generator
            unrealized = unrealized + amount
        equity = balance + unrealized
        peak = max(record.peak_equity if record.peak_equity is not None else self.starting_cash, equity)
        drawdown = peak - equity
        fraction = drawdown / peak if peak > 0 else ZERO
        return AccountFigures(account=record.account, balance=balance, unrealized_pnl=unrealized, equity=equity,
                              peak_equity=peak, drawdown=drawdown, drawdown_fraction=fraction,
                              max_drawdown=max(record.max_drawdown, drawdown), realized_pnl=record.realized_pnl,
                              commission=record.commission, financing=record.financing,
                              unconverted=self._unconverted(book) if book.pending or book.unconverted_unrealized
                              else ())

    @staticmethod
    def _unconverted(book: _AccountBook) -> tuple[tuple[str, Decimal], ...]:
        if not book.pending and not book.unconverted_unrealized:
            return ()
        totals = dict(book.pending)
        for instrument, amount in book.unconverted_unrealized.items():
            currency = quote_currency(instrument)
            totals[currency] = totals.get(currency, ZERO) + amount
        return tuple(sorted((c, a) for c, a in totals.items() if a != 0))

    def _refresh_unrealized(self, book: _AccountBook, instrument: str) -> None:
        """Caller holds the ledger context."""
        book.figures = None
        mark = self._marks.get(instrument)
        positions = book.by_instrument.get(instrument, ())
        if quote_currency(instrument) == self.currency:  # SAME_CURRENCY: its convert is the amount itself
            book.unconverted_unrealized.pop(instrument, None)
            unrealized = ZERO
            for position in positions:  # as sum(..., ZERO) adds, without its generator
                unrealized = unrealized + position._unrealized(mark)
            book.unrealized[instrument] = unrealized
            return
        rate = self._rate(instrument)
        if rate is None:
            book.unrealized[instrument] = ZERO
            book.unconverted_unrealized[instrument] = sum((p._unrealized(mark) for p in positions), ZERO)
            if book.unconverted_unrealized[instrument] == 0:
                del book.unconverted_unrealized[instrument]
            return
        book.unconverted_unrealized.pop(instrument, None)
        book.unrealized[instrument] = sum((rate.convert(p._unrealized(mark)) for p in positions), ZERO)

    def _update_figures(self, book: _AccountBook) -> AccountFigures:
        """Caller holds the ledger context (every caller is inside it: not entered twice)."""
        figures = book.figures = self._figures(book)
        book.record.peak_equity = figures.peak_equity
        book.record.max_drawdown = figures.max_drawdown
        if self._trading_day is not None:
            book.days.equity(self._trading_day, figures.equity, self._equity_before(book))
        book.last_equity = figures.equity
        return figures


def _copier(cls: type) -> Callable:
    """A shallow copy of a record, as copy.copy makes it, without copy's reduce protocol: the class
    built again from every field's value (exact: each field is an __init__ argument, none is
    derived in __post_init__)."""
    names = [f.name for f in fields(cls)]
    if not all(f.init for f in fields(cls)) or hasattr(cls, "__post_init__") or set(names) != set(cls.__slots__):
        raise TypeError(f"{cls.__name__} cannot be copied field by field")
    values = operator.attrgetter(*names)
    return lambda record: cls(*values(record))


_copy_position = _copier(Position)
_copy_strategy = _copier(StrategyRecord)
_copy_account = _copier(AccountRecord)
_UNKNOWN = object()


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
