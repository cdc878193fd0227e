"""`CachedTicks.quotes` makes a window's floats, timestamps and datetimes with numpy, at once; each
must be exactly what the per-tick path made of the same row: float() of the exact Decimal price,
the datetime `rows` gives, and that datetime's timestamp()."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services.backtest.cache import CachedTicks

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _columns(price_scale: int, prices: list[int], times: list[int]) -> CachedTicks:
    n = len(prices)
    return CachedTicks(instrument="USD_JPY", time_us=np.array(times, dtype=np.int64),
                       bid=np.array(prices, dtype=np.int64), ask=np.array(prices[::-1], dtype=np.int64),
                       volume=np.array([i % 3 * 125 for i in range(n)], dtype=np.int64),
                       aggressor=np.zeros(n, dtype=np.int8), price_scale=price_scale, volume_scale=2)


@pytest.mark.parametrize("price_scale", [0, 1, 3, 5, 8, 15, 22, 23])
def test_quotes_are_what_each_row_makes(price_scale):
    rng = random.Random(price_scale)
    prices = [rng.randrange(1, 10 ** 12) for _ in range(20_000)] + [1, 5, 10 ** 15, 2 ** 53 - 1]
    times = sorted(rng.randrange(0, 4_000_000_000_000_000) for _ in range(len(prices)))
    columns = _columns(price_scale, prices, times)
    quotes = list(columns.quotes())
    assert len(quotes) == len(prices)
    for (time, seconds, bid, ask, volume, *row), (t, b, a, v, s) in zip(quotes, columns.rows()):
        assert row == [b, a, v, s]
        assert time == EPOCH + timedelta(microseconds=t) and time.tzinfo is timezone.utc
        assert seconds == time.timestamp()
        assert bid == float(columns.price(b)) and ask == float(columns.price(a))
        assert volume == columns.volume_of(v) and str(volume) == str(columns.volume_of(v))


def test_integers_too_large_for_a_float_take_the_exact_path():
    prices, times = [2 ** 53 + 1, 2 ** 60 + 12345, 3], [2 ** 53 + 1, 2 ** 53 + 3, 250_000_000_000_000_001]  # to 9892
    columns = _columns(3, prices, times)
    quotes = list(columns.quotes())
    assert [q[2] for q in quotes] == [float(columns.price(p)) for p in prices]
    assert [q[1] for q in quotes] == [(EPOCH + timedelta(microseconds=t)).timestamp() for t in times]


def test_a_window_is_its_rows():
    columns = _columns(3, list(range(1000, 1100)), list(range(0, 100_000_000, 1_000_000)))
    start, end = EPOCH + timedelta(seconds=10), EPOCH + timedelta(seconds=20)
    assert [(q[0], *q[5:]) for q in columns.quotes(start, end)] == \
        [(EPOCH + timedelta(microseconds=t), b, a, v, s) for t, b, a, v, s in columns.rows(start, end)]
    assert len(list(columns.quotes(start, end))) == 10
