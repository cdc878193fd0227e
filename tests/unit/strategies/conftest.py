"""Builders for strategy tests: candles from a list of mid closes, views, positions.

Exposed as fixtures (`build`, `load`) because test modules here are not a package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.strategies.registry import load_strategy
from services.strategies.sdk import Bar, MarketView, Ohlc, OpenPosition

T0 = datetime(2024, 1, 8, 0, 0, tzinfo=UTC)  # a Monday, Tokyo open
STEP = {
    "S5": timedelta(seconds=5),
    "M1": timedelta(minutes=1),
    "M5": timedelta(minutes=5),
    "H1": timedelta(hours=1),
    "H4": timedelta(hours=4),
    "D1": timedelta(days=1),
}


def _shift(ohlc: Ohlc, by: float) -> Ohlc:
    return Ohlc(open=ohlc.open + by, high=ohlc.high + by, low=ohlc.low + by, close=ohlc.close + by)


def _pick(values: Sequence[float | None] | None, i: int, default: float) -> float:
    if values is None or values[i] is None:
        return default
    return values[i]


def make_bars(
    mids: Sequence[float],
    timeframe: str = "M1",
    *,
    spread: float | Sequence[float] = 0.003,
    start: datetime = T0,
    opens: Sequence[float | None] | None = None,
    highs: Sequence[float | None] | None = None,
    lows: Sequence[float | None] | None = None,
    wick: float = 0.002,
    ticks: int | Sequence[int] = 10,
    instrument: str = "USD_JPY",
) -> list[Bar]:
    """Closed candles from mid closes, oldest first.

    By default a candle opens at the previous close and its high/low sit `wick` beyond the
    body; bid/ask are mid -/+ spread/2 on every price. `opens`/`highs`/`lows` override per
    candle; a None entry keeps the default.
    """
    bars = []
    for i, close in enumerate(mids):
        open_ = _pick(opens, i, mids[i - 1] if i else close)
        high = _pick(highs, i, max(open_, close) + wick)
        low = _pick(lows, i, min(open_, close) - wick)
        mid = Ohlc(open=open_, high=high, low=low, close=close)
        half = (spread if isinstance(spread, float | int) else spread[i]) / 2
        begin = start + i * STEP[timeframe]
        bars.append(
            Bar(
                instrument=instrument,
                timeframe=timeframe,
                start=begin,
                end=begin + STEP[timeframe],
                bid=_shift(mid, -half),
                ask=_shift(mid, half),
                mid=mid,
                tick_count=ticks if isinstance(ticks, int) else ticks[i],
                volume=0.0,
            )
        )
    return bars


def make_view(
    *, now: datetime | None = None, factors: dict | None = None, instrument: str = "USD_JPY", **bars: list[Bar]
) -> MarketView:
    """A view over the given candle lists (keyword = timeframe); `now` defaults to the latest close."""
    if now is None:
        now = max(candles[-1].end for candles in bars.values() if candles)
    return MarketView(instrument=instrument, now=now, bars=bars, factors=factors or {})


def make_position(
    quantity: str | int, price: str, *, opened: datetime = T0, instrument: str = "USD_JPY"
) -> OpenPosition:
    return OpenPosition(
        instrument=instrument, quantity=Decimal(quantity), average_price=Decimal(price), opened_time=opened
    )


def series(*legs: tuple[int, float], begin: float = 150.0) -> list[float]:
    """Mid closes as straight legs: each (candles, step per candle), starting after `begin`."""
    out, price = [], begin
    for count, step in legs:
        for _ in range(count):
            price = round(price + step, 6)
            out.append(price)
    return out


@dataclass(frozen=True)
class _Builders:
    bars = staticmethod(make_bars)
    view = staticmethod(make_view)
    position = staticmethod(make_position)
    series = staticmethod(series)
    t0 = T0
    step = STEP


@pytest.fixture
def build() -> _Builders:
    return _Builders()


@pytest.fixture
def load():
    """load(slug, **params) -> a strategy built through the registry from text params."""

    def _load(slug: str, **params: object):
        return load_strategy(slug, {name: str(value) for name, value in params.items()})

    return _load
