"""M5 strategies: bollinger_touch, macd_rsi_div, squeeze_pulse_break, wick_reversal_pro."""

from __future__ import annotations


def _side(signal):
    return signal.side if signal is not None else None


def _flip(mids):
    return [round(300.0 - m, 6) for m in mids]


# --- bollinger_touch --------------------------------------------------------------------------

CHOP = [150 + (0.01 if i % 2 else -0.01) for i in range(30)]  # bands about 150 +- 0.05


def test_bollinger_touch_fades_closes_beyond_the_bands(build, load):
    strategy = load("bollinger_touch")
    assert _side(strategy.decide_entry(build.view(M5=build.bars(CHOP + [149.9], "M5")))) == "buy"
    assert _side(strategy.decide_entry(build.view(M5=build.bars(CHOP + [150.1], "M5")))) == "sell"


def test_bollinger_touch_no_entry_inside_the_bands(build, load):
    strategy = load("bollinger_touch")
    assert strategy.decide_entry(build.view(M5=build.bars(CHOP + [150.0], "M5"))) is None


def test_bollinger_touch_computes_its_own_bands_and_exits_at_the_middle(build, load):
    strategy = load("bollinger_touch")
    bands = {"M5": {"bb_upper_20_2": 150.5, "bb_middle_20_2": 150.2, "bb_lower_20_2": 150.05}}
    inside = build.view(M5=build.bars(CHOP + [150.0], "M5"), factors=bands)
    assert strategy.decide_entry(inside) is None  # a published band is not read
    above = build.view(M5=build.bars(CHOP + [150.1], "M5"))
    assert strategy.exit_signal(above, build.position("10000", "149.9")).rule == "signal"  # at/above middle
    assert strategy.exit_signal(above, build.position("-10000", "150.3")) is None


# --- macd_rsi_div -----------------------------------------------------------------------------

# Flat, a sharp drop (RSI ~0), a bounce, a slow slide to a lower low (RSI ~22: higher low).
DIVERGENCE = [(60, 0.0), (4, -0.05), (6, 0.02), (12, -0.012)]


def test_macd_rsi_div_buys_bullish_divergence_when_the_histogram_turns_up(build, load):
    strategy = load("macd_rsi_div")
    mids = build.series(*DIVERGENCE, (1, 0.01))
    assert _side(strategy.decide_entry(build.view(M5=build.bars(mids, "M5")))) == "buy"
    assert _side(strategy.decide_entry(build.view(M5=build.bars(_flip(mids), "M5")))) == "sell"


def test_macd_rsi_div_waits_for_the_histogram_and_needs_a_divergence(build, load):
    strategy = load("macd_rsi_div")
    still_sliding = build.series(*DIVERGENCE, (1, -0.012))
    assert strategy.decide_entry(build.view(M5=build.bars(still_sliding, "M5"))) is None
    no_divergence = build.series((60, 0.0), (22, -0.02), (1, 0.01))  # RSI pinned at 0: no higher low
    assert strategy.decide_entry(build.view(M5=build.bars(no_divergence, "M5"))) is None


# --- squeeze_pulse_break ----------------------------------------------------------------------

QUIET = [150 + (0.003 if i % 2 else -0.003) for i in range(40)]  # tight closes, wide candles


def test_squeeze_break_enters_in_the_breakout_direction(build, load):
    strategy = load("squeeze_pulse_break")
    up = build.bars(QUIET + [150.1], "M5", wick=0.05)
    down = build.bars(QUIET + [149.9], "M5", wick=0.05)
    assert _side(strategy.decide_entry(build.view(M5=up))) == "buy"
    assert _side(strategy.decide_entry(build.view(M5=down))) == "sell"


def test_squeeze_break_needs_a_squeeze_a_breakout_and_only_the_first_one(build, load):
    strategy = load("squeeze_pulse_break")
    inside = build.bars(QUIET + [150.0], "M5", wick=0.05)
    assert strategy.decide_entry(build.view(M5=inside)) is None
    second = build.bars(QUIET + [150.1, 150.2], "M5", wick=0.05)
    assert strategy.decide_entry(build.view(M5=second)) is None
    trend = build.series((40, 0.01))  # wide Bollinger, narrow candles: never a squeeze
    breakout = build.bars(trend + [trend[-1] + 0.3], "M5")
    view = build.view(M5=breakout)
    assert strategy.decide_entry(view) is None


# --- wick_reversal_pro ------------------------------------------------------------------------


def _trend_with_wick(build, *, up: bool, lower_wick: bool):
    rising = build.series((70, 0.01))
    mids = rising + [rising[-1] + 0.005]
    opens = [None] * 70 + [rising[-1]]
    if not up:
        mids, opens = _flip(mids), [None] * 70 + [round(300.0 - rising[-1], 6)]
    wick_end = opens[-1] - 0.05 if lower_wick else max(opens[-1], mids[-1]) + 0.05
    extremes = [None] * 70 + [wick_end]
    if lower_wick:
        return build.bars(mids, "M5", opens=opens, lows=extremes)
    return build.bars(mids, "M5", opens=opens, highs=extremes)


def test_wick_pro_takes_rejections_with_the_trend(build, load):
    strategy = load("wick_reversal_pro")
    buy = strategy.decide_entry(build.view(M5=_trend_with_wick(build, up=True, lower_wick=True)))
    assert _side(buy) == "buy" and "EMA up-trend" in buy.reason
    assert _side(strategy.decide_entry(build.view(M5=_trend_with_wick(build, up=False, lower_wick=False)))) == "sell"


def test_wick_pro_ignores_counter_trend_wicks_and_small_wicks(build, load):
    strategy = load("wick_reversal_pro")
    assert strategy.decide_entry(build.view(M5=_trend_with_wick(build, up=False, lower_wick=True))) is None
    assert strategy.decide_entry(build.view(M5=_trend_with_wick(build, up=True, lower_wick=False))) is None
    bars = _trend_with_wick(build, up=True, lower_wick=True)
    # A 5-pip wick is 3 ATRs of 1.7 pips here, but small against 4 ATRs (a published ATR is not read).
    assert _side(strategy.decide_entry(build.view(M5=bars, factors={"M5": {"atr_14": 0.2}}))) == "buy"
    assert load("wick_reversal_pro", wick_atr_ratio=4).decide_entry(build.view(M5=bars)) is None
