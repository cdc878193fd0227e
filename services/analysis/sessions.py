"""The three FX sessions, in their own cities' time (so daylight saving moves them as it should).

- tokyo: 09:00 to 18:00 Asia/Tokyo (no daylight saving: 00:00 to 09:00 UTC);
- london: 08:00 to 17:00 Europe/London;
- new_york: 08:00 to 17:00 America/New_York.

A moment belongs to every session open at it; `label` joins them ("london+new_york"), or
says "off_hours". Weekends are not special here: the market data has no candles then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    zone: ZoneInfo
    opens: time
    closes: time

    def day_of(self, moment: datetime) -> date | None:
        """The local date of the session instance `moment` falls in, or None when it is closed."""
        local = moment.astimezone(self.zone)
        return local.date() if self.opens <= local.time() < self.closes else None

    def start_of(self, day: date) -> datetime:
        return datetime.combine(day, self.opens, tzinfo=self.zone)


SESSIONS: tuple[Session, ...] = (
    Session("tokyo", ZoneInfo("Asia/Tokyo"), time(9), time(18)),
    Session("london", ZoneInfo("Europe/London"), time(8), time(17)),
    Session("new_york", ZoneInfo("America/New_York"), time(8), time(17)),
)
OFF_HOURS = "off_hours"


def label(moment: datetime) -> str:
    """The sessions open at `moment`, joined with "+", or "off_hours"."""
    open_now = [s.name for s in SESSIONS if s.day_of(moment) is not None]
    return "+".join(open_now) if open_now else OFF_HOURS


__all__ = ["OFF_HOURS", "SESSIONS", "Session", "label"]
