"""S5 strategies: scalp_ping_5s, tick_imbalance, impulse_retest_s5."""

from __future__ import annotations

from datetime import timedelta


def _side(signal):
    return signal.side if signal is not None else None


def _flip(mids):
    return [round(300.0 - m, 6) for m in mids]


# --- scalp_ping_5s ----------------------------------------------------------------------------

BURST = [150.0] * 10 + [150.0 + 0.002 * i for i in range(1, 7)]  # +1.2 pips in 6 candles


def test_scalp_ping_enters_with_momentum_that_beats_the_spread(build, load):
    strategy = load("scalp_ping_5s")
    assert _side(strategy.decide_entry(build.view(S5=build.bars(BURST, "S5", spread=0.003)))) == "buy"
    assert _side(strategy.decide_entry(build.view(S5=build.bars(_flip(BURST), "S5", spread=0.003)))) == "sell"


def test_scalp_ping_stays_out_when_the_spread_is_wide_or_momentum_weak(build, load):
    strategy = load("scalp_ping_5s")
    assert strategy.decide_entry(build.view(S5=build.bars(BURST, "S5", spread=0.01))) is None  # 1 pip > 0.8
    weak = BURST[:-1] + [150.008]  # +0.8 pips < 3 x 0.3
    assert strategy.decide_entry(build.view(S5=build.bars(weak, "S5", spread=0.003))) is None
    locked = build.bars(BURST, "S5", spread=0.0)
    assert strategy.decide_entry(build.view(S5=locked)) is None


def test_scalp_ping_has_tight_protective_exits(build, load):
    strategy = load("scalp_ping_5s")
    view = build.view(S5=build.bars([150.0] * 7, "S5", spread=0.003))
    assert strategy.decide_exit(view, build.position("10000", "150.03", opened=view.now)).rule == "stop_loss"
    assert strategy.decide_exit(view, build.position("10000", "149.97", opened=view.now)).rule == "take_profit"
    held = build.position("10000", "150.0", opened=view.now - timedelta(minutes=3))
    assert strategy.decide_exit(view, held).rule == "time_stop"


# --- tick_imbalance ---------------------------------------------------------------------------


def test_tick_imbalance_follows_one_sided_flow(build, load):
    strategy = load("tick_imbalance")
    rising = build.series((12, 0.001))
    signal = strategy.decide_entry(build.view(S5=build.bars(rising, "S5", ticks=5)))
    assert _side(signal) == "buy" and "over 60 ticks" in signal.reason
    assert _side(strategy.decide_entry(build.view(S5=build.bars(_flip(rising), "S5", ticks=5)))) == "sell"


def test_tick_imbalance_needs_enough_ticks_and_a_clear_imbalance(build, load):
    strategy = load("tick_imbalance")
    rising = build.series((12, 0.001))
    assert strategy.decide_entry(build.view(S5=build.bars(rising, "S5", ticks=2))) is None  # 24 < 30
    # Up candles carry 5 ticks, down candles 4: imbalance ~0.11.
    zigzag = [150.0 + (0.001 if i % 2 else 0.0) for i in range(12)]
    ticks = [5 if i % 2 else 4 for i in range(12)]
    assert strategy.decide_entry(build.view(S5=build.bars(zigzag, "S5", ticks=ticks))) is None


# --- impulse_retest_s5 ------------------------------------------------------------------------

CALM = [150.0 + (0.001 if i % 2 else 0.0) for i in range(25)]
IMPULSE = CALM + [150.03, 150.035, 150.033]  # candle 25: 150.0 -> 150.03, midpoint 150.015


def _retest(build, mids, last_close, *, low=None, high=None):
    count = len(mids) + 1
    lows = [None] * (count - 1) + [low]
    highs = [None] * (count - 1) + [high]
    return build.view(S5=build.bars(mids + [last_close], "S5", lows=lows, highs=highs))


def test_impulse_retest_enters_on_the_first_retest_of_the_midpoint(build, load):
    strategy = load("impulse_retest_s5")
    buy = strategy.decide_entry(_retest(build, IMPULSE, 150.02, low=150.014))
    assert _side(buy) == "buy" and "150.01500" in buy.reason
    sell = strategy.decide_entry(_retest(build, _flip(IMPULSE), 149.98, high=149.986))
    assert _side(sell) == "sell"


def test_impulse_retest_no_entry_without_touch_or_after_an_earlier_touch(build, load):
    strategy = load("impulse_retest_s5")
    assert strategy.decide_entry(_retest(build, IMPULSE, 150.03)) is None  # low 150.028: no touch
    touched_before = IMPULSE[:-1] + [150.016]  # its default low 150.014 already touched
    assert strategy.decide_entry(_retest(build, touched_before, 150.02, low=150.014)) is None
    assert strategy.decide_entry(_retest(build, CALM + [150.001] * 3, 150.0, low=149.99)) is None  # no impulse
