"""A decision never depends on how much history a process holds.

Every catalogue strategy decides on two days of real USD/JPY candles (built by the market-data
plane's aggregator from the repository's M1 bid/ask bars) three times per decision candle:
with exactly the history a worker's book keeps (history_bars() + 1 per timeframe), with three
times that, and with every candle since the start. Entries and exits (for a long and a short
opened a minute earlier at the close) must be the same signal, reason text included.
"""

from __future__ import annotations

import asyncio
import bisect
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.backtest.data import MarketData
from services.backtest.inprocess import to_bar
from services.market_data.candles import CandleAggregator
from services.strategies.registry import catalogue, load_strategy
from services.strategies.sdk import MarketView, OpenPosition
from tests.support.data import bar_spec

START, END = datetime(2013, 2, 4, tzinfo=timezone.utc), datetime(2013, 2, 7, tzinfo=timezone.utc)
DECISIONS = 150  # the last decisions of the span, per strategy


@pytest.fixture(scope="module")
def candles():
    async def read():
        market = MarketData(bar_spec(), "USD_JPY")
        return [tick async for tick in market.ticks(START, END)]

    aggregator = CandleAggregator()
    out: dict[str, list] = {}
    for tick in asyncio.run(read()):
        for candle in aggregator.on_tick(tick):
            out.setdefault(candle.timeframe.name, []).append(to_bar(candle))
    return out


def _view(candles, strategy, now: datetime, depth: dict[str, int | None]) -> MarketView:
    bars = {}
    for tf in strategy.timeframes:
        series = candles.get(tf, [])
        held = bisect.bisect_right([b.end for b in series], now)
        first = 0 if depth[tf] is None else max(0, held - depth[tf])
        bars[tf] = series[first:held]
    return MarketView(instrument="USD_JPY", now=now, bars=bars)


@pytest.mark.parametrize("slug", sorted(catalogue()))
def test_more_history_never_changes_a_decision(candles, slug):
    strategy = load_strategy(slug, {})
    book = {tf: n + 1 for tf, n in strategy.history_bars().items()}
    decisions = candles[strategy.decision_timeframe]
    needed = max(book.values()) * 3
    chosen = decisions[-DECISIONS:]
    assert len(decisions) - DECISIONS > needed or strategy.decision_timeframe != "M1", "enough history for 3x"
    seen = 0
    for bar in chosen:
        views = [_view(candles, strategy, bar.end, {tf: k * book[tf] if k else None for tf in book})
                 for k in (1, 3, 0)]
        if any(len(v.bars[tf]) < book[tf] for v in views for tf in book):
            continue  # the span is too short for this timeframe's book yet
        seen += 1
        opened = bar.end - timedelta(minutes=1)
        price = Decimal(str(round(bar.mid.close, 3)))
        positions = [OpenPosition(instrument="USD_JPY", quantity=Decimal(q), average_price=price, opened_time=opened)
                     for q in ("10000", "-10000")]
        answers = [(strategy.decide_entry(v), [strategy.decide_exit(v, p) for p in positions]) for v in views]
        assert answers[0] == answers[1] == answers[2], f"{slug} at {bar.end}"
    assert seen >= 10


def test_ma_cross_answers_as_a_fresh_instance_whatever_it_was_asked_before(candles):
    """ma_cross keeps the last window it answered (a candle's EXIT and ENTRY workers ask about the
    same one, and the next candle's window is it moved on by one): candle after candle, again,
    skipping and going back, every answer is the one a new instance gives."""
    kept = load_strategy("ma_cross", {})
    series = candles["M1"]
    opened = series[0].end
    positions = [OpenPosition(instrument="USD_JPY", quantity=Decimal(q), average_price=Decimal("93.500"),
                              opened_time=opened) for q in ("10000", "-10000")]
    asked = [*range(100, 400), 399, 399, *range(700, 400, -7), 1000, 1001, 1001, 999, 1000]
    for i in asked:
        view = MarketView(instrument="USD_JPY", now=series[i].end, bars={"M1": series[:i + 1]})
        fresh = load_strategy("ma_cross", {})
        assert kept.decide_entry(view) == fresh.decide_entry(view), f"candle {i}"
        assert [kept.exit_signal(view, p) for p in positions] == [fresh.exit_signal(view, p) for p in positions]
