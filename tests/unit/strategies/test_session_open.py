"""session_open: opening-range breakout inside its session window, once per session day."""

from __future__ import annotations

from datetime import timedelta

import pytest

PRE = [150.0] * 6  # 23:30-00:00, before the session
RANGE = [150.01, 150.03, 150.02, 150.04, 150.02, 150.03]  # 00:00-00:30; high 150.045, low 149.995
AFTER = [150.03, 150.04]  # 00:30-00:40, inside the range


def _view(build, closes, start_offset=timedelta(minutes=-30)):
    return build.view(M5=build.bars(closes, "M5", start=build.t0 + start_offset, wick=0.005))


def test_buys_the_first_close_above_the_range_high(build, load):
    signal = load("session_open").decide_entry(_view(build, PRE + RANGE + AFTER + [150.08]))
    assert signal.side == "buy"
    assert "opening range high 150.045" in signal.reason


def test_sells_the_first_close_below_the_range_low(build, load):
    signal = load("session_open").decide_entry(_view(build, PRE + RANGE + AFTER + [149.95]))
    assert signal.side == "sell"


def test_no_entry_inside_the_range_during_it_or_after_the_first_breakout(build, load):
    strategy = load("session_open")
    assert strategy.decide_entry(_view(build, PRE + RANGE + AFTER)) is None
    assert strategy.decide_entry(_view(build, PRE + RANGE[:3] + [150.2])) is None  # range still forming
    assert strategy.decide_entry(_view(build, PRE + RANGE + AFTER + [150.08, 150.1])) is None
    assert strategy.decide_entry(_view(build, PRE + RANGE + AFTER + [149.95, 150.1])) is None  # one per day


def test_no_entry_after_the_window(build, load):
    strategy = load("session_open", active_minutes=60)
    inside_until_0100 = PRE + RANGE + [150.03] * 6  # candles up to 01:00
    assert strategy.decide_entry(_view(build, inside_until_0100 + [150.08])) is None  # 01:00-01:05
    assert strategy.decide_entry(_view(build, inside_until_0100[:-1] + [150.08])).side == "buy"  # 00:55-01:00


@pytest.mark.parametrize(
    ("minutes_after_start", "active"),
    [(-1, False), (0, True), (10, True), (180, True), (181, False), (23 * 60, False), (24 * 60 + 5, True)],
)
def test_active_only_inside_its_window(build, load, minutes_after_start, active):
    strategy = load("session_open")
    assert strategy.is_active(build.t0 + timedelta(minutes=minutes_after_start)) is active


def test_window_can_cross_midnight(build, load):
    strategy = load("session_open", session_start="22:00", range_minutes=15, active_minutes=240)
    assert strategy.is_active(build.t0 + timedelta(hours=1))  # 01:00 is 3 h into the 22:00 session
    assert not strategy.is_active(build.t0 + timedelta(hours=2, minutes=1))
    closes = [150.0] * 3 + [150.02, 150.03, 150.01] + [150.1]  # 21:45-22:00, 22:00-22:15 range, breakout
    view = _view(build, closes, start_offset=timedelta(hours=-2, minutes=-15))
    assert load("session_open", session_start="22:00", range_minutes=15, active_minutes=240).decide_entry(
        view
    ).side == "buy"
