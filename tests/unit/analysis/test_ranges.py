"""Range metrics of real USD/JPY candles against TA-Lib and pandas."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import talib

from services.analysis import sessions
from services.analysis.ranges import RangeCandle, RangeSettings, RangeTracker, Regime
from tests.support.data import M1_ASK, M1_BID

SETTINGS = RangeSettings(atr_period=14, regime_window=300, min_regime_candles=60, volatility_window=60)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """Two days of February 2013 M1 bars, mid prices and the closing spread."""
    def read(path):
        frame = pd.read_csv(path)
        return frame.set_index(pd.to_datetime(frame.pop("timestamp"), utc=True))

    bid, ask = read(M1_BID), read(M1_ASK)
    frame = ((bid + ask) / 2).join((ask["close"] - bid["close"]).rename("spread"), how="inner")
    return frame.loc["2013-02-04":"2013-02-05"]


def fed(bars: pd.DataFrame, settings: RangeSettings = SETTINGS) -> tuple[RangeTracker, list]:
    tracker = RangeTracker("USD_JPY", settings)
    states = [tracker.add(RangeCandle(instrument="USD_JPY", start=t.to_pydatetime(),
                                      end=t.to_pydatetime() + timedelta(minutes=1), high=r.high, low=r.low,
                                      close=r.close, spread=r.spread)) for t, r in bars.iterrows()]
    return tracker, states


def test_atr_regime_volatility_and_spread_equal_talib_and_pandas(bars):
    assert len(bars) > 2000
    tracker, states = fed(bars)
    atr = talib.ATR(bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy(), timeperiod=14)
    ours = np.array([np.nan if s.atr is None else s.atr for s in states])
    assert np.isnan(ours[:14]).all() and np.isnan(atr[:14]).all()
    np.testing.assert_allclose(ours[14:], atr[14:], rtol=1e-9)

    # Percentile: the share of the last 300 ATRs at or below the current one.
    series = pd.Series(atr[14:])
    percentile = series.rolling(300, min_periods=1).apply(lambda w: (w <= w[-1]).mean(), raw=True)
    np.testing.assert_allclose([s.atr_percentile for s in states[14:]], percentile, rtol=1e-12)
    expected = [Regime.UNKNOWN if i < 59 else Regime.LOW if p <= 1 / 3 else Regime.HIGH if p > 2 / 3 else Regime.NORMAL
                for i, p in enumerate(percentile)]
    assert [s.regime for s in states[14:]] == expected
    assert {Regime.LOW, Regime.NORMAL, Regime.HIGH} <= set(expected)

    metrics = tracker.metrics()
    closes = bars["close"].to_numpy()[-61:]
    assert metrics.return_stdev == pytest.approx(np.diff(np.log(closes)).std(ddof=1), rel=1e-9)
    assert metrics.average_spread == pytest.approx(bars["spread"].to_numpy()[-60:].mean(), rel=1e-9)
    assert metrics.state.spread == pytest.approx(bars["spread"].iloc[-1])


def test_session_ranges_equal_a_groupby_in_each_city_s_time(bars):
    tracker, _ = fed(bars)
    metrics = {s.session: s for s in tracker.metrics().sessions}
    for session in sessions.SESSIONS:
        local = bars.index.tz_convert(session.zone)
        inside = (local.time >= session.opens) & (local.time < session.closes)
        days = bars[inside].groupby(local[inside].date)
        ranges = days["high"].max() - days["low"].min()
        got = metrics[session.name]
        assert got.start.date() == ranges.index[-1]
        assert got.high == days["high"].max().iloc[-1] and got.low == days["low"].min().iloc[-1]
        assert got.sessions_averaged == len(ranges) - 1
        assert got.average_range == pytest.approx(ranges.iloc[:-1].mean())
    assert sessions.label(bars.index[-1].to_pydatetime().replace(hour=13)) == "london+new_york"
    assert sessions.label(bars.index[-1].to_pydatetime().replace(hour=22)) == "off_hours"


def test_a_candle_not_newer_than_the_last_is_ignored(bars):
    tracker, _ = fed(bars.iloc[:100])
    again, _ = fed(bars.iloc[:100])
    first = bars.index[50].to_pydatetime()
    assert again.add(RangeCandle(instrument="USD_JPY", start=first, end=first + timedelta(minutes=1), high=999.0,
                                 low=0.0, close=500.0, spread=1.0)) is None
    assert again.metrics() == tracker.metrics() and not math.isnan(tracker.metrics().state.atr)
