"""The trading day: where one day's figures end and the next begin.

FX trades around the clock on weekdays and by convention each day ends at 17:00 New York
time (the "rollover", when financing is charged); that is the default. A crypto desk may
prefer "00:00 UTC". The boundary is a local time in a named time zone, so the day follows
New York's daylight saving time (21:00 UTC in summer, 22:00 UTC in winter) without
anyone changing a setting.

A trading day is labelled with the calendar date on which it ends, so the day that runs
from Monday 17:00 to Tuesday 17:00 New York is "Tuesday", as FX desks say; a day that ends
at midnight belongs to the date before the midnight.

The position plane books each account's figures per trading day (`DayFigures`: equity at
the start, the highest equity, realized PnL net of commission and financing) and streams the
last `DAYS_STREAMED` calendar days of them, so the order plane's daily loss limit and its
drawdown over the last N days need no call per order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Calendar days of day figures the position plane keeps in memory and streams: the
#: longest drawdown window the order plane may ask for.
DAYS_STREAMED = 31

_BOUNDARY = re.compile(r"^(\d{1,2}):(\d{2})\s+(\S+)$")
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class TradingDay:
    start: datetime  # inclusive, UTC
    end: datetime    # exclusive, UTC
    date: date       # the calendar date on which the day ends

    def __str__(self) -> str:
        return f"{self.date.isoformat()} (from {self.start:%Y-%m-%d %H:%M} UTC)"


class TradingCalendar:
    """Days that end at `end` local time in `zone`."""

    def __init__(self, end: time, zone: ZoneInfo) -> None:
        self.end = end
        self.zone = zone

    @classmethod
    def parse(cls, text: str) -> "TradingCalendar":
        """From "HH:MM Area/City" (e.g. "17:00 America/New_York"); ValueError with a sentence otherwise."""
        match = _BOUNDARY.match(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a time and a time zone such as '17:00 America/New_York'")
        hour, minute, zone_name = int(match[1]), int(match[2]), match[3]
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r}: {hour:02d}:{minute:02d} is not a time of day")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{text!r}: {zone_name!r} is not a time zone name such as America/New_York or UTC") \
                from None
        return cls(time(hour, minute), zone)

    @classmethod
    def fx(cls) -> "TradingCalendar":
        return cls.parse("17:00 America/New_York")

    def __str__(self) -> str:
        return f"{self.end:%H:%M} {self.zone.key}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TradingCalendar) and (self.end, self.zone.key) == (other.end, other.zone.key)

    def __hash__(self) -> int:
        return hash((self.end, self.zone.key))

    def _boundary(self, day: date) -> datetime:
        return datetime.combine(day, self.end, tzinfo=self.zone).astimezone(timezone.utc)

    def day_of(self, moment: datetime) -> TradingDay:
        """The trading day `moment` falls in."""
        local = moment.astimezone(self.zone).date()
        boundary = self._boundary(local)
        if moment >= boundary:
            start, end = boundary, self._boundary(local + timedelta(days=1))
        else:
            start, end = self._boundary(local - timedelta(days=1)), boundary
        return TradingDay(start=start, end=end, date=(end - _TICK).astimezone(self.zone).date())

    def rollovers(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every day boundary in (after, until], oldest first."""
        boundary = self.day_of(after).end
        while boundary <= until:
            yield boundary
            boundary = self.day_of(boundary).end


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One account's trading day, in the account's currency."""

    day: TradingDay
    opening_equity: Decimal  # equity when the day began (the last equity of the day before)
    peak_equity: Decimal     # the highest equity seen during the day, the opening included
    realized_pnl: Decimal    # realized PnL - commission + financing booked during the day


def recent_peak(days: Iterable[DayFigures], today: date, window_days: int, equity: Decimal) -> Decimal:
    """The highest equity over the last `window_days` trading dates up to `today`, now included."""
    first = today - timedelta(days=window_days - 1)
    return max((d.peak_equity for d in days if first <= d.day.date <= today), default=equity).max(equity)
