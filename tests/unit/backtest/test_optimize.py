"""Sweeps and walk-forward: ranges, windows, the chosen set, reproducible samplers, parallel runs."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from services.backtest.cache import TickCache
from services.backtest.data import MarketData
from services.backtest.fast import FastBacktest, FastSettings
from services.backtest.optimize import (OptimizeError, Sweep, SweepSpec, Task, grid, parse_range, run_chunk,
                                        walk_forward, windows)
from services.backtest.trades import round_trips
from services.strategies.registry import load_strategy
from tests.support.data import bar_spec

FIRST, LAST = datetime(2013, 2, 4, tzinfo=timezone.utc), datetime(2013, 2, 8, tzinfo=timezone.utc)
US = 1_000_000


def test_ranges_include_the_stop_and_lists_keep_their_text():
    assert parse_range("fast_period=5:30:5").values == ("5", "10", "15", "20", "25", "30")
    assert parse_range("fast_period=5:29:5").values == ("5", "10", "15", "20", "25")
    assert parse_range("deviations=1.5,2, 2.5").values == ("1.5", "2", "2.5")
    assert parse_range("slow_period=0.5:1.0:0.25").values == ("0.50", "0.75", "1.00")
    assert len(grid([parse_range("a=1:10:1"), parse_range("b=1:10:1")])) == 100
    for bad in ("fast_period", "fast_period=5:x:5", "fast_period=30:5:5", "fast_period=5:30:0"):
        with pytest.raises(OptimizeError):
            parse_range(bad)


def test_windows_are_contiguous_on_whole_minutes_and_cover_the_data():
    first, last = 1_359_676_800 * US + 17, 1_362_096_045 * US
    spans = windows(first, last, 4, 0.75)
    assert spans[0].in_start_us == first and spans[-1].out_end_us == last + 1
    for a, b in zip(spans, spans[1:]):
        assert a.out_end_us == b.in_start_us and b.in_start_us % (60 * US) == 0
    assert all(w.in_start_us < w.in_end_us < w.out_end_us for w in spans)
    with pytest.raises(OptimizeError, match="out-of-sample"):
        windows(first, last, 2, 1.0)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    cache = TickCache(tmp_path_factory.mktemp("cache"))
    market = MarketData(bar_spec(), "USD_JPY", cache=cache)
    import asyncio

    asyncio.run(market.columns())
    return SweepSpec(slug="ma_cross", fixed={"stop_loss_pips": "8", "take_profit_pips": "12"}, timeframe=None,
                     settings=FastSettings(), cache_folder=cache.folder, cache_key=market.cache_key)


def _span():
    return windows(int(FIRST.timestamp()) * US, int(LAST.timestamp()) * US - 1, 2, 0.5)


RANGES = [parse_range("fast_period=4:12:4"), parse_range("slow_period=10:30:10")]


def test_a_run_is_the_fast_backtest_of_its_params_and_the_best_is_chosen_in_sample(spec):
    result = walk_forward(Sweep(spec), _span(), RANGES)
    fitted = [r for r in result.runs if r.window == 1 and r.sample == "in"]
    assert len(fitted) == 9
    refused = [r for r in fitted if r.refused]
    assert [(r.params["fast_period"], r.params["slow_period"]) for r in refused] == [("12", "10")]
    assert "must be below 'slow_period'" in refused[0].refused
    one = fitted[4]
    ticks = TickCache(spec.cache_folder).load(spec.cache_key)
    strategy = load_strategy("ma_cross", {**spec.fixed, **one.params})
    window = result.chosen[0][0]
    alone = FastBacktest(strategy).run(ticks, _at(window.in_start_us), _at(window.in_end_us))
    trades, _ = round_trips(alone.fills)
    assert (one.trades, one.net_pnl) == (len(trades), sum((t.net_pnl for t in trades), Decimal(0)))
    for window, best, tested in result.chosen:
        in_window = [r for r in result.runs if r.window == window.number and r.sample == "in" and not r.refused]
        assert best.net_pnl == max(r.net_pnl for r in in_window)
        assert tested.sample == "out" and tested.params == best.params and len(tested.curve_equity) > 0


def test_the_optuna_sampler_is_reproducible_with_a_seed(spec):
    ranges = [parse_range("fast_period=3:15:1"), parse_range("slow_period=16:40:2")]
    first = walk_forward(Sweep(spec), _span()[:1], ranges, sampler="optuna", trials=12, seed=7)
    again = walk_forward(Sweep(spec), _span()[:1], ranges, sampler="optuna", trials=12, seed=7)
    other = walk_forward(Sweep(spec), _span()[:1], ranges, sampler="optuna", trials=12, seed=8)
    params = [r.params for r in first.runs]
    assert len([r for r in first.runs if r.sample == "in"]) == 12
    assert params == [r.params for r in again.runs] and params != [r.params for r in other.runs]


def test_parallel_runs_give_the_same_figures_as_one_process(spec):
    tasks = [Task(1, "in", int(FIRST.timestamp()) * US, int(LAST.timestamp()) * US, p) for p in grid(RANGES)]
    alone = run_chunk(spec, tasks)
    shared = Sweep(spec, jobs=2, chunk=3)
    assert shared.pool(10) is None  # a few runs go faster here than a spawned process starts
    with shared.pool(1000) as pool:
        parallel = shared._map(pool, tasks)
    assert [(r.params, r.trades, r.net_pnl, r.sharpe) for r in parallel] == \
        [(r.params, r.trades, r.net_pnl, r.sharpe) for r in alone]


def _at(us):
    from datetime import timedelta

    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=us)


def test_optimize_cli_writes_the_report(tmp_path):
    import subprocess
    import sys

    from tests.support.postgres import PROJECT_ROOT

    run = subprocess.run(
        [sys.executable, "-m", "services.cli", "optimize", "--data", bar_spec(), "--strategy", "ma_cross",
         "--param", "fast_period=5:15:5", "--param", "slow_period=20:40:10", "--windows", "2", "--jobs", "1",
         "--from", "2013-02-04", "--to", "2013-02-08", "--out", str(tmp_path / "out"),
         "--cache-dir", str(tmp_path / "cache"), "--no-progress"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "ma_cross: 20 runs (0 refused)" in run.stdout and "window 2: fast_period=" in run.stdout
    lines = (tmp_path / "out" / "windows.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("window,in_sample_from,out_of_sample_from")
    for picture in ("heatmap.png", "oos_equity.png"):
        assert (tmp_path / "out" / picture).read_bytes().startswith(b"\x89PNG")
    assert len((tmp_path / "out" / "runs.csv").read_text().splitlines()) == 21
    bad = subprocess.run([sys.executable, "-m", "services.cli", "optimize", "--data", str(Path("nope.csv")),
                          "--strategy", "ma_cross", "--param", "fast_period=5:x"], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "START:STOP:STEP must be three numbers" in bad.stderr
