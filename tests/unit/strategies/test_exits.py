"""Protective exits: stop-loss, take-profit, time-stop, checked at the executable side."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.strategies.exits import protective_exit

# ma_cross defaults: stop 10 pips, target 20 pips, 240 minutes; spread 0.3 pips (0.003).


def _exit(build, load, mid_close: float, quantity: str, price: str, held_minutes: int = 1):
    strategy = load("ma_cross")
    bars = build.bars([mid_close], "M1")
    view = build.view(M1=bars)
    position = build.position(quantity, price, opened=view.now - timedelta(minutes=held_minutes))
    return protective_exit(strategy.params, view, position, timeframe="M1")


@pytest.mark.parametrize(
    ("mid_close", "rule"),
    [
        (149.9015, "stop_loss"),  # bid 149.900: exactly -10 pips
        (149.9025, None),  # bid 149.901: -9.9 pips
        (150.2015, "take_profit"),  # bid 150.200: exactly +20 pips
        (150.2005, None),  # bid 150.199: +19.9 pips
    ],
)
def test_long_is_measured_at_the_bid(build, load, mid_close, rule):
    signal = _exit(build, load, mid_close, "10000", "150.000")
    assert (signal.rule if signal else None) == rule


@pytest.mark.parametrize(
    ("mid_close", "rule"),
    [
        (150.0985, "stop_loss"),  # ask 150.100: exactly -10 pips
        (150.0975, None),  # ask 150.099
        (149.7985, "take_profit"),  # ask 149.800: exactly +20 pips
        (149.7995, None),  # ask 149.801
    ],
)
def test_short_is_measured_at_the_ask(build, load, mid_close, rule):
    signal = _exit(build, load, mid_close, "-10000", "150.000")
    assert (signal.rule if signal else None) == rule


def test_spread_counts_against_a_long(build, load):
    # Mid is only 9.9 pips down, but the bid (where a long sells) is 10.05 pips down.
    assert _exit(build, load, 149.901, "10000", "150.000").rule == "stop_loss"


@pytest.mark.parametrize(("held", "rule"), [(239, None), (240, "time_stop"), (600, "time_stop")])
def test_time_stop_from_opened_time(build, load, held, rule):
    for quantity in ("10000", "-10000"):
        signal = _exit(build, load, 150.0, quantity, "150.000", held_minutes=held)
        assert (signal.rule if signal else None) == rule


def test_stop_loss_wins_over_time_stop_and_closes_everything(build, load):
    signal = _exit(build, load, 149.5, "10000", "150.000", held_minutes=999)
    assert signal.rule == "stop_loss"
    assert signal.quantity is None


def test_time_stop_without_any_candle(build, load):
    strategy = load("ma_cross")
    position = build.position("10000", "150.000", opened=build.t0)
    view = build.view(now=build.t0 + timedelta(hours=5), M1=[])
    assert protective_exit(strategy.params, view, position).rule == "time_stop"
    view = build.view(now=build.t0 + timedelta(hours=1), M1=[])
    assert protective_exit(strategy.params, view, position) is None


def test_decide_exit_applies_protective_exits_first(build, load):
    strategy = load("ma_cross")
    bars = build.bars([150.0] * 40, "M1")
    view = build.view(M1=bars)
    position = build.position("10000", "150.500", opened=view.now)
    assert strategy.decide_exit(view, position).rule == "stop_loss"
