"""PerCandle: a strategy's own scalar rule at every candle, on the view its live worker would hold.

Parity with the event path, trade for trade, is tests/unit/backtest/test_fast_parity.py. Here:
what the rule is handed (the worker's own Bars and book), and what it refuses, with a sentence.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pytest

from services.strategies.per_candle import PerCandle
from services.strategies.params import BaseParams
from services.strategies.sdk import Bar, EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy
from services.strategies.vector import CandleColumns, NotVectorizable

MINUTE = 60_000_000


def params(**extra) -> BaseParams:
    return BaseParams(stop_loss_pips=Decimal(10), take_profit_pips=Decimal(20), max_hold_minutes=60, **extra)

START_US = int(datetime(2013, 2, 4, tzinfo=timezone.utc).timestamp()) * 1_000_000


def columns(closes: list[float]) -> CandleColumns:
    """M1 candles whose bid is the close - 0.01 and ask + 0.01 of each field, volume 1.5 each."""
    n = len(closes)
    mid = np.array(closes, dtype=np.float64)
    offsets = {"open": -0.002, "high": 0.005, "low": -0.005, "close": 0.0}
    spread = {"mid": 0.0, "bid": -0.01, "ask": 0.01}
    start = START_US + MINUTE * np.arange(n, dtype=np.int64)
    return CandleColumns(start_us=start, end_us=start + MINUTE, tick_count=np.full(n, 4),
                         build=lambda side, name: mid + offsets[name] + spread[side],
                         volumes=lambda: np.full(n, 1.5), closed_us=start + MINUTE + 250_000)


class Seen(Strategy):
    """Buys when the last close rose, sells when it fell; exits a long on a fall. Records every view."""

    slug = "seen"
    Params = BaseParams
    timeframes = ("M1",)

    def __init__(self, params: BaseParams) -> None:
        super().__init__(params)
        self.views: list[MarketView] = []

    def history_bars(self):
        return {"M1": 3}

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        self.views.append(view)
        closes = view.closes("M1")
        if len(closes) < 2 or closes[-1] == closes[-2]:
            return None
        return self.enter("buy" if closes[-1] > closes[-2] else "sell", "moved")

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        closes = view.closes("M1")
        if position.side == "long" and len(closes) >= 2 and closes[-1] < closes[-2]:
            return self.close("fell")
        return None


def test_each_candle_is_answered_on_the_workers_own_view_of_it():
    strategy = Seen(params())
    signals = PerCandle(strategy).signals(columns([150.0, 150.1, 150.1, 150.0, 150.2]))
    assert signals.enter.tolist() == [0, 1, 0, -1, 1]
    assert signals.exit_long.tolist() == [False, False, False, True, False]
    assert signals.exit_short.tolist() == [False] * 5  # its rule closes longs only
    last = strategy.views[-1]
    assert last.now == datetime(2013, 2, 4, 0, 5, tzinfo=timezone.utc)  # the candle's end, as the worker decides
    bars = last.bars["M1"]
    assert len(bars) == 4  # the book's depth: history_bars + 1, as the worker's book keeps
    bar: Bar = bars[-1]
    assert (bar.start, bar.end) == (datetime(2013, 2, 4, 0, 4, tzinfo=timezone.utc),
                                    datetime(2013, 2, 4, 0, 5, tzinfo=timezone.utc))
    assert bar.closed_time == datetime(2013, 2, 4, 0, 5, 0, 250_000, tzinfo=timezone.utc)
    assert (bar.mid.close, bar.bid.close, bar.ask.high, bar.tick_count, bar.volume) == (
        150.2, 150.2 - 0.01, 150.2 + 0.005 + 0.01, 4, 1.5)
    with pytest.raises(TypeError):
        last.bars["M1"] = ()  # read-only, as the worker's view is


class Reads(Seen):
    reads_factors = "rsi:14"


class TwoFrames(Seen):
    timeframes = ("M1", "M5")


def test_a_rule_reading_factors_or_two_timeframes_without_their_candles_is_refused_with_a_sentence():
    with pytest.raises(NotVectorizable, match=r"seen reads factors \(rsi:14\); it runs on the event path"):
        PerCandle(Reads(params()))
    with pytest.raises(NotVectorizable, match="reads M1, M5, and these candle columns carry only one timeframe"):
        PerCandle(TwoFrames(params())).signals(columns([150.0, 150.1]))


class CountsM5(TwoFrames):
    def __init__(self, p) -> None:
        super().__init__(p)
        self.m5_seen: list[int] = []

    def history_bars(self):
        return {"M1": 10, "M5": 10}

    def decide_entry(self, view):
        self.m5_seen.append(len(view.bars["M5"]))
        return None


def test_coarser_candles_reach_the_book_in_closing_order_after_a_decision_on_the_same_tick():
    """Live, the tick that closes the fifth M1 candle also closes the first M5 one; the aggregator hands
    over the finer first and a strategy that reads no factors decides at once, so that decision has not
    seen the M5 candle yet; the next one has."""
    m1 = columns([150.0 + i / 100 for i in range(11)])
    m1 = dataclasses.replace(m1, closed_tick=np.arange(1, 12))  # M1 candle i is closed by tick i + 1
    m5_start = START_US + 5 * MINUTE * np.arange(2, dtype=np.int64)
    m5 = CandleColumns(start_us=m5_start, end_us=m5_start + 5 * MINUTE, tick_count=np.full(2, 20),
                       build=lambda side, name: np.array([150.02, 150.07]), volumes=lambda: np.full(2, 7.5),
                       closed_us=m5_start + 5 * MINUTE, closed_tick=np.array([5, 10]))
    m1 = dataclasses.replace(m1, timeframe={"M5": m5}.__getitem__)
    strategy = CountsM5(params())
    PerCandle(strategy).signals(m1)
    assert strategy.m5_seen == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2]


class HalfOut(Seen):
    def exit_signal(self, view, position):
        return ExitSignal(reason="half", rule="signal", quantity=abs(position.quantity) / 2)


def test_a_partial_exit_needs_the_event_path():
    with pytest.raises(NotVectorizable, match="closes part of a position"):
        PerCandle(HalfOut(params())).signals(columns([150.0, 150.1]))


class Broken(Seen):
    def decide_entry(self, view):
        if len(view.bars["M1"]) == 2:
            raise ZeroDivisionError("boom")
        return super().decide_entry(view)

    def exit_signal(self, view, position):
        return ExitSignal(reason="bad", rule="hunch")  # not an exit rule: unusable, as the harness says


def test_an_exception_or_an_unusable_answer_is_no_signal_and_is_logged(caplog):
    with caplog.at_level(logging.ERROR):
        signals = PerCandle(Broken(params())).signals(columns([150.0, 150.1, 150.2]))
    assert signals.enter.tolist() == [0, 0, 1]  # the second candle raised: no entry there, the run goes on
    assert not signals.exit_long.any() and not signals.exit_short.any()
    assert "failed in decide_entry" in caplog.text and "ZeroDivisionError: boom" in caplog.text
    assert "exit rule must be one of" in caplog.text


def test_units_of_the_position_asked_about_are_the_strategys():
    asked: list[OpenPosition] = []

    class Records(Seen):
        def exit_signal(self, view, position):
            asked.append(position)
            return None

    PerCandle(Records(params(units=Decimal(2500)))).signals(columns([150.0]))
    assert [p.quantity for p in asked] == [Decimal(2500), Decimal(-2500)]
