"""Trading days: 17:00 New York through daylight saving time, labels, rollovers, the recent peak."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest

from services.common.tradingday import DayFigures, TradingCalendar, recent_peak


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_the_fx_day_ends_at_17_new_york_in_winter_and_in_summer():
    fx = TradingCalendar.fx()
    winter = fx.day_of(utc(2024, 1, 9, 21, 59))  # Tuesday 16:59 EST
    assert (winter.start, winter.end, winter.date) == (utc(2024, 1, 8, 22), utc(2024, 1, 9, 22), date(2024, 1, 9))
    after = fx.day_of(utc(2024, 1, 9, 22, 0))  # 17:00 EST: Wednesday's day begins
    assert (after.start, after.date) == (utc(2024, 1, 9, 22), date(2024, 1, 10))
    summer = fx.day_of(utc(2024, 7, 9, 21, 0))  # 17:00 EDT
    assert (summer.start, summer.end) == (utc(2024, 7, 9, 21), utc(2024, 7, 10, 21))
    # the day New York moves its clocks (Sunday 10 March 2024) lasts 23 hours
    short = fx.day_of(utc(2024, 3, 10, 12))
    assert (short.start, short.end) == (utc(2024, 3, 9, 22), utc(2024, 3, 10, 21))


def test_a_day_ending_at_midnight_belongs_to_the_date_before():
    utc_days = TradingCalendar.parse("00:00 UTC")
    day = utc_days.day_of(utc(2024, 1, 9, 13))
    assert (day.start, day.end, day.date) == (utc(2024, 1, 9), utc(2024, 1, 10), date(2024, 1, 9))
    assert str(utc_days) == "00:00 UTC" and str(TradingCalendar.fx()) == "17:00 America/New_York"


def test_rollovers_between_two_moments_include_each_boundary_once():
    fx = TradingCalendar.fx()
    # Friday 12:00 EST to Monday 09:00 EST: Friday, Saturday and Sunday 17:00
    assert list(fx.rollovers(utc(2024, 1, 12, 17), utc(2024, 1, 15, 14))) == [
        utc(2024, 1, 12, 22), utc(2024, 1, 13, 22), utc(2024, 1, 14, 22)]
    assert list(fx.rollovers(utc(2024, 1, 12, 17), utc(2024, 1, 12, 21, 59))) == []
    assert list(fx.rollovers(utc(2024, 1, 12, 17), utc(2024, 1, 12, 22))) == [utc(2024, 1, 12, 22)]


@pytest.mark.parametrize("text, message", [
    ("5pm New York", "is not a time and a time zone"),
    ("25:00 UTC", "is not a time of day"),
    ("17:00 Mars/Olympus", "is not a time zone name"),
])
def test_a_bad_boundary_is_refused_with_a_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        TradingCalendar.parse(text)


def test_the_recent_peak_looks_back_n_trading_dates_and_includes_now():
    fx = TradingCalendar.fx()

    def day(d: int, peak: str) -> DayFigures:
        return DayFigures(day=fx.day_of(utc(2024, 1, d, 12)), opening_equity=D(peak), peak_equity=D(peak),
                          realized_pnl=D(0))

    days = [day(8, "120"), day(10, "110"), day(11, "105")]
    today = date(2024, 1, 11)
    assert recent_peak(days, today, 1, D(100)) == D(105)
    assert recent_peak(days, today, 2, D(100)) == D(110)  # the 10th and the 11th
    assert recent_peak(days, today, 3, D(100)) == D(110)  # the 9th had no entry
    assert recent_peak(days, today, 4, D(100)) == D(120)
    assert recent_peak([], today, 5, D(100)) == D(100)
    assert recent_peak(days, today, 1, D(130)) == D(130)
