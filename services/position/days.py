"""One account's figures per trading day, for the daily loss limit and the recent drawdown.

A day opens at the first change of the account's money in it (a fill, a mark of a held
instrument, a financing charge), with the account's equity just before that change as its
opening equity; from then on every new equity may raise the day's peak, and every booked
amount (realized PnL net of commission, financing) adds to the day's realized PnL. A day
in which nothing changed has no entry: its equity is the previous day's last, so the
recent-drawdown window loses nothing by its absence.

Only the last DAYS_STREAMED calendar days are kept in memory; the store keeps them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from services.common.tradingday import DAYS_STREAMED, DayFigures, TradingDay


@dataclass(slots=True)
class _Day:
    day: TradingDay
    opening_equity: Decimal
    peak_equity: Decimal
    realized_pnl: Decimal
    # The figures as last built (immutable, so shared): the order plane reads every kept day at
    # each intent, and only the newest day ever changes. DayBook drops them on each change.
    built: DayFigures | None = None

    def figures(self) -> DayFigures:
        if self.built is None:
            self.built = DayFigures(day=self.day, opening_equity=self.opening_equity, peak_equity=self.peak_equity,
                                    realized_pnl=self.realized_pnl)
        return self.built


class DayBook:
    def __init__(self, days: Iterable[DayFigures] = ()) -> None:
        self._days: deque[_Day] = deque(
            _Day(d.day, d.opening_equity, d.peak_equity, d.realized_pnl) for d in sorted(days, key=lambda d: d.day.start))

    def _today(self, day: TradingDay, equity_before: Decimal) -> _Day:
        if self._days and self._days[-1].day.start >= day.start:
            return self._days[-1]  # a late event counts in the newest day, never reopens an old one
        entry = _Day(day, equity_before, equity_before, Decimal(0))
        self._days.append(entry)
        first = day.date - timedelta(days=DAYS_STREAMED - 1)
        while self._days[0].day.date < first:
            self._days.popleft()
        return entry

    def book(self, day: TradingDay, amount: Decimal, equity_before: Decimal) -> None:
        """Realized PnL net of commission, or financing, booked during `day`."""
        entry = self._today(day, equity_before)
        entry.realized_pnl += amount
        entry.built = None

    def equity(self, day: TradingDay, equity: Decimal, equity_before: Decimal) -> None:
        """A new equity of the account (every fill and mark: no figures are built here, `figures` reads them)."""
        entry = self._today(day, equity_before)
        if equity > entry.peak_equity:
            entry.peak_equity = equity
            entry.built = None

    def figures(self, today: TradingDay | None, equity: Decimal) -> tuple[DayFigures, ...]:
        """The kept days, oldest first, ending with `today` (a quiet today stands at `equity`)."""
        days = [d.figures() for d in self._days]
        if today is not None and (not days or days[-1].day.start < today.start):
            days.append(DayFigures(day=today, opening_equity=equity, peak_equity=equity, realized_pnl=Decimal(0)))
        first = today.date - timedelta(days=DAYS_STREAMED - 1) if today is not None else None
        return tuple(d for d in days if first is None or d.day.date >= first)

    def last(self, count: int) -> list[DayFigures]:
        return [d.figures() for d in list(self._days)[-count:]]
