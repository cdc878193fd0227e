"""Ties are decided by each strategy's stated rule, not by float noise.

The ma_cross series is one where TA-Lib's running float sums give SMA(2) - SMA(4) = +2.8e-14 on
a bar where the two averages are exactly equal (150.098 + 150.303 = 150.282 + 150.119): the
old rule bought there. The Bollinger series put a close exactly on a band or on the middle.
"""

from __future__ import annotations

import talib

TIE = [150.481, 150.282, 150.119, 150.098, 150.303]  # SMA(2) == SMA(4) exactly on the last bar; below before it


def _side(signal):
    return None if signal is None else signal.side


def test_the_tie_series_is_float_noise_for_talib():
    import numpy as np

    closes = np.array(TIE)
    assert talib.SMA(closes, 2)[-1] - talib.SMA(closes, 4)[-1] > 0  # the noise the old rule traded on
    assert talib.SMA(closes, 2)[-2] < talib.SMA(closes, 4)[-2]


def test_ma_cross_a_tie_is_no_cross_and_a_strict_move_after_it_is(build, load):
    strategy = load("ma_cross", fast_period=2, slow_period=4)
    assert strategy.decide_entry(build.view(M1=build.bars(TIE))) is None
    assert _side(strategy.decide_entry(build.view(M1=build.bars(TIE + [150.8])))) == "buy"  # tie, then above
    # Below, a tie, below again: the tie counts as "not below", so the move back down is a cross.
    assert _side(strategy.decide_entry(build.view(M1=build.bars(TIE + [149.0])))) == "sell"
    # A tie is neither side: a long is not closed on it, a short is not either.
    view = build.view(M1=build.bars(TIE))
    assert strategy.exit_signal(view, build.position("10000", "150.0")) is None
    assert strategy.exit_signal(view, build.position("-10000", "150.0")) is None


def test_ma_cross_from_above_through_a_tie_to_below_is_a_sell(build, load):
    strategy = load("ma_cross", fast_period=2, slow_period=4)
    mirrored = [round(300.0 - p, 3) for p in TIE]  # above before, a tie on the last bar
    assert strategy.decide_entry(build.view(M1=build.bars(mirrored))) is None
    assert _side(strategy.decide_entry(build.view(M1=build.bars(mirrored + [149.0])))) == "sell"


def test_bollinger_a_close_exactly_on_a_band_is_a_touch(build, load):
    # period 2, one deviation: the bands are exactly the two closes, so the last close is on one.
    strategy = load("bollinger_touch", period=2, deviations=1.0)
    assert _side(strategy.decide_entry(build.view(M5=build.bars([150.3, 150.1], "M5")))) == "buy"
    assert _side(strategy.decide_entry(build.view(M5=build.bars([150.1, 150.3], "M5")))) == "sell"
    assert _side(strategy.decide_entry(build.view(M5=build.bars([150.117, 150.113], "M5")))) == "buy"


def test_bollinger_a_close_exactly_on_the_middle_band_exits(build, load):
    strategy = load("bollinger_touch", period=3)
    view = build.view(M5=build.bars([150.1, 150.3, 150.2], "M5"))  # mean 150.2 = the last close
    assert strategy.exit_signal(view, build.position("10000", "150.0")).rule == "signal"
    assert strategy.exit_signal(view, build.position("-10000", "150.4")).rule == "signal"
