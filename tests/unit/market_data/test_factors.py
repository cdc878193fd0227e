"""Factors equal batch talib on the same closed-candle series; parsing and warm-up rules."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.market_data.candles import Candle, CandleAggregator, Ohlc
from services.market_data.factors import DEFAULT_FACTORS, FactorEngine, parse_factors
from services.market_data.feeds.replay import BarFilesFeed
from services.market_data.instruments import Timeframe
from tests.support.data import M1_ASK, M1_BID
from tests.support.talib_reference import talib_reference


def assert_matches_reference(candles, outputs, *, tolerance=1e-9):
    high, low, close = (np.array([getattr(c.mid, f) for c in candles]) for f in ("high", "low", "close"))
    reference = talib_reference(high, low, close)
    checked = 0
    for i, values in enumerate(outputs):
        expected = {name: float(series[i]) for name, series in reference.items() if math.isfinite(series[i])}
        assert values.keys() == expected.keys(), i  # a factor in warm-up is absent, never NaN
        for name, value in values.items():
            assert value == pytest.approx(expected[name], abs=tolerance, rel=0), (i, name)
            checked += 1
    return checked


@pytest.fixture(scope="module")
async def m1_candles() -> list[Candle]:
    feed = BarFilesFeed(M1_BID, M1_ASK)
    aggregator = CandleAggregator([Timeframe.M1])
    candles = []
    async for tick in feed.ticks():
        candles += aggregator.on_tick(tick)
        if len(candles) >= 1500:
            break
    return candles


def test_factors_on_each_close_equal_batch_talib_on_the_full_series(m1_candles):
    engine = FactorEngine(parse_factors(DEFAULT_FACTORS), history=1000)
    outputs = [engine.on_candle(c) for c in m1_candles]
    # 1,500 candles > the 1,000-candle history: the EMA-type factors must still match the full series.
    assert assert_matches_reference(m1_candles, outputs) > 15_000
    assert engine.latest("USD_JPY", Timeframe.M1) == outputs[-1]


def test_a_warmed_engine_continues_exactly_like_one_that_never_stopped(m1_candles):
    head, tail = m1_candles[:900], m1_candles[900:]
    warmed = FactorEngine(history=1000)
    warmed.warm(head[-1000:])
    outputs = [warmed.on_candle(c) for c in tail]
    high, low, close = (np.array([getattr(c.mid, f) for c in m1_candles]) for f in ("high", "low", "close"))
    reference = talib_reference(high, low, close)
    for i, values in enumerate(outputs, start=900):
        for name, value in values.items():
            assert value == pytest.approx(float(reference[name][i]), abs=1e-9, rel=0)
    assert warmed.on_candle(tail[-1]) is None  # a candle already in the series is never counted twice


def test_factors_in_warm_up_are_left_out():
    engine = FactorEngine(parse_factors("rsi:3,sma:5"))
    start = datetime(2013, 1, 1, tzinfo=timezone.utc)
    values = []
    for i, price in enumerate([1.0, 1.1, 1.05, 1.2, 1.15, 1.3]):
        ohlc = Ohlc(price, price + 0.01, price - 0.01, price)
        values.append(engine.on_candle(Candle("USD_JPY", Timeframe.M1, start + timedelta(minutes=i),
                                              start + timedelta(minutes=i + 1), ohlc, ohlc, ohlc, 1, 0.0)))
    assert [sorted(v) for v in values] == [[], [], [], ["rsi_3"], ["rsi_3", "sma_5"], ["rsi_3", "sma_5"]]


def test_factor_names_follow_the_contract():
    names = list(itertools.chain.from_iterable(s.names for s in parse_factors(DEFAULT_FACTORS)))
    assert names == ["rsi_14", "macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9", "atr_14",
                     "bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2", "adx_14", "ema_20", "ema_50",
                     "sma_20", "sma_50"]
    assert parse_factors("bbands:20:2.5")[0].names[0] == "bb_upper_20_2.5"


@pytest.mark.parametrize("text, message", [
    ("rsi", "needs 1 parameter"), ("foo:3", "unknown factor 'foo'"), ("ema:x", "not a number"),
    ("sma:1", "at least 2"), ("macd:26:12:9", "fast period must be shorter"), ("", "no factors configured"),
    ("bbands:20:nan", "positive deviations"),
])
def test_bad_factor_lists_are_refused_with_a_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_factors(text)
