"""Two workers fed the same candles may share one candle book (the in-process backtest's EXIT and
ENTRY): each candle is taken once, both decisions on it see one view, and they decide exactly as
two workers with books of their own."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest

from services.strategies.book import CandleBook, bar_from_proto
from services.strategies.registry import load_strategy
from services.strategies.sdk import OpenPosition, StrategyHarness
from services.strategies.status import WorkerStatus
from services.strategies.worker import StrategyWorker
from tests.unit.strategies.test_worker import T0, Flags, Orders, Positions, candle

PARAMS = {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "30", "take_profit_pips": "40"}


def _mids(n: int) -> list[float]:
    """Waves: the averages cross again and again."""
    return [100.0 + 0.05 * ((i // 7) % 2 * 2 - 1) * (i % 7) for i in range(n)]


def test_the_same_candle_again_is_taken_once_and_an_equal_copy_is_refused():
    book = CandleBook("USD_JPY", {"M1": 5})
    first, second = bar_from_proto(candle(0, 100.0)), bar_from_proto(candle(1, 100.1))
    assert book.add_bar(first) and book.add_bar(second)
    assert book.add_bar(second) and book.count("M1") == 2  # the second worker sharing the book: not added twice
    assert not book.add_bar(bar_from_proto(candle(1, 100.1)))  # a stream's repeat is a new object: ignored
    assert not book.add_bar(first)  # older than the last one kept


def test_one_view_per_state_of_the_book():
    book = CandleBook("USD_JPY", {"M1": 5})
    bar = bar_from_proto(candle(0, 100.0))
    book.add_bar(bar)
    view = book.view(bar.end)
    assert book.view(bar.end) is view and view.bars["M1"] == (bar,)
    assert book.view(bar.end + timedelta(seconds=1)) is not view
    book.set_factors("M1", bar.start, {"rsi_14": 50.0})
    assert book.view(bar.end).factors["M1"] == {"rsi_14": 50.0}
    later = bar_from_proto(candle(1, 100.1))
    book.add_bar(later)
    assert book.view(bar.end).bars["M1"] == (bar, later) and view.bars["M1"] == (bar,)  # an old view stays as it was


def test_a_view_cannot_be_changed_by_the_strategy_it_is_shown_to():
    # One view serves the EXIT and the ENTRY decision: a strategy that wrote into it would change the
    # other's input (and the columns are the book's own). Every level refuses, and the book is intact.
    book = CandleBook("USD_JPY", {"M1": 5})
    bar = bar_from_proto(candle(0, 100.0))
    book.add_bar(bar)
    book.set_factors("M1", bar.start, {"rsi_14": 50.0})
    view = book.view(bar.end)
    def write_factor():
        view.factors["M1"]["rsi_14"] = 99.0

    def add_timeframe():
        view.factors["M5"] = {}

    def replace_bars():
        view.bars["M1"] = ()

    def drop_columns():
        del view.columns["M1"]

    def write_price():
        view.closes("M1")[0] = 1.0

    attempts = [write_factor, add_timeframe, replace_bars, drop_columns, write_price]
    for attempt in attempts:
        with pytest.raises((TypeError, ValueError)):
            attempt()
    again = book.view(bar.end + timedelta(seconds=1))
    assert again.factor("M1", "rsi_14") == 50.0 and again.bars["M1"] == (bar,) and list(again.closes("M1")) == [100.0]


def _workers(positions: Positions, shared: bool) -> tuple[list[StrategyWorker], list]:
    strategy = load_strategy("ma_cross", PARAMS)
    book = CandleBook("USD_JPY", strategy.history_bars()) if shared else None
    decisions: list = []
    workers = []
    for role in ("exit", "entry"):
        status = WorkerStatus(slug=strategy.slug, role=role, started=T0, params={})
        workers.append(StrategyWorker(harness=StrategyHarness(strategy, logging.getLogger("test")), role=role,
                                      market=None, positions=positions, orders=Orders(), flags=Flags(),
                                      status=status, on_decision=decisions.append, tracer=None, book=book))
    return workers, decisions


async def test_workers_sharing_a_book_decide_as_workers_with_their_own():
    runs = []
    for shared in (False, True):
        positions = Positions()
        positions.open = [OpenPosition(instrument="USD_JPY", quantity=Decimal(10000), average_price=Decimal("100.0"),
                                       opened_time=T0)]
        workers, decisions = _workers(positions, shared)
        for i, mid in enumerate(_mids(60)):
            bar = bar_from_proto(candle(i, mid))  # one object handed to both, as the in-process backtest does
            for worker in workers:
                await worker.on_candle(bar)
        runs.append((decisions, [w.orders.sent for w in workers], [w.status.decisions for w in workers]))
    assert runs[0] == runs[1]
    decisions = runs[1][0]
    assert len(decisions) == 2 * 60 and {d.action for d in decisions} >= {"hold", "enter", "exit"}
