"""The in-process backtest reads cached data as columns (a FeedTick only for the ticks that need
one); over the same ticks handed over one FeedTick at a time it must make the same run: every
fill, equity sample, decision, refusal and account figure, with protective exits that fire, both
fill rules, and ticks late enough for the aggregator to drop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.backtest.cache import TickCache
from services.backtest.data import CachedWindow, MarketData
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.order.brokers.paper import PaperSettings
from services.strategies.registry import load_strategy
from tests.support.data import bar_spec

START, END = datetime(2013, 2, 4, tzinfo=timezone.utc), datetime(2013, 2, 6, tzinfo=timezone.utc)
PAPER = PaperSettings(slippage=Decimal("0.001"), commission_rate=Decimal("0.00002"))
TIGHT = {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3", "take_profit_pips": "4",
         "max_hold_minutes": "7"}


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return MarketData(bar_spec(), "USD_JPY", cache=TickCache(tmp_path_factory.mktemp("cache")))


async def _one_by_one(window: CachedWindow):
    async for tick in window:
        yield tick


def _run_of(result):
    return (result.fills, result.curve, result.decisions, result.rejected, result.ticks, result.decision_bars,
            result.account)


@pytest.mark.parametrize("fill_at", ["next", "current"])
async def test_columns_make_the_run_feed_ticks_make(month, fill_at):
    settings = BacktestSettings(paper=PAPER, fill_at=fill_at)
    window = month.ticks(START, END)
    assert isinstance(window, CachedWindow)
    seen_rows, seen_ticks = [], []
    rows = await InProcessBacktest(load_strategy("ma_cross", TIGHT), settings).run(window, on_tick=seen_rows.append)
    ticks = await InProcessBacktest(load_strategy("ma_cross", TIGHT), settings).run(
        _one_by_one(month.ticks(START, END)), on_tick=seen_ticks.append)
    assert len(rows.fills) > 50, "a real comparison: many fills"
    assert {d.reason.split(":")[0] for d in rows.decisions if d.action == "exit"} >= {"stop_loss", "take_profit"}
    assert _run_of(rows) == _run_of(ticks)
    assert seen_rows == seen_ticks and len(seen_rows) == rows.ticks


async def test_late_ticks_are_dropped_the_same_way(month):
    """Ticks out of order: the aggregator drops them, the venue still sees them, on both loops."""
    columns = await month.columns()
    first = int(columns.time_us.searchsorted(int(START.timestamp() * 1_000_000)))
    shuffled = columns.time_us.copy()
    late = shuffled[first + 6:first + 4000:9]
    shuffled[first + 6:first + 4000:9] = late - int(timedelta(minutes=3) / timedelta(microseconds=1))
    moved = replace(columns, time_us=shuffled)

    class _Window(CachedWindow):
        async def columns(self):
            return moved

    by_rows = InProcessBacktest(load_strategy("ma_cross", TIGHT), BacktestSettings(paper=PAPER))
    by_ticks = InProcessBacktest(load_strategy("ma_cross", TIGHT), BacktestSettings(paper=PAPER))
    rows = await by_rows.run(_Window(month, START, END))
    ticks = await by_ticks.run(_one_by_one(_Window(month, START, END)))
    assert by_rows.aggregator.late_ticks["USD_JPY"] > 100
    assert by_rows.aggregator.late_ticks == by_ticks.aggregator.late_ticks
    assert _run_of(rows) == _run_of(ticks)
