"""`quantmesh backtest --fast` as a user runs it: the same trades.csv as the in-process run, the
data parsed once into the cache, and a strategy without a vector rule told so and run in-process."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.data import bar_spec
from tests.support.postgres import PROJECT_ROOT

DAY = ("--from", "2013-02-05", "--to", "2013-02-06")
ENV = {"QUANTMESH_PAPER_COMMISSION_RATE": "0.00002", "QUANTMESH_PAPER_SLIPPAGE": "0.001",
       "QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000"}


def quantmesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **ENV})


def test_fast_and_in_process_write_the_same_trades(tmp_path):
    common = ("backtest", "--data", bar_spec(), "--strategy", "ma_cross", "--params", "fast_period=5",
              "slow_period=20", *DAY, "--no-progress", "--cache-dir", str(tmp_path / "cache"))
    slow = quantmesh(*common, "--out", str(tmp_path / "event"))
    assert slow.returncode == 0, slow.stderr
    assert list((tmp_path / "cache").glob("*.ticks")), "the first run parses the data into the cache"
    fast = quantmesh(*common, "--fast", "--out", str(tmp_path / "fast"))
    assert fast.returncode == 0, fast.stderr
    assert "fast path" in fast.stdout and "pre-trade risk limits are not applied" in fast.stderr
    event_trades = (tmp_path / "event" / "trades.csv").read_text().splitlines()
    assert len(event_trades) > 20 and (tmp_path / "fast" / "trades.csv").read_text().splitlines() == event_trades
    assert (tmp_path / "fast" / "equity.png").read_bytes().startswith(b"\x89PNG")


def test_a_strategy_without_a_vector_rule_says_so_and_runs_in_process(tmp_path):
    run = quantmesh("backtest", "--data", bar_spec(), "--strategy", "impulse_retest_s5", *DAY, "--fast", "--no-progress",
                    "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache"))
    assert run.returncode == 0, run.stderr
    assert ("quantmesh backtest --fast: impulse_retest_s5 has no vector rule; it runs on the event path; "
            "running the in-process path instead") in run.stderr
    assert "fast path" not in run.stdout and "impulse_retest_s5 on USD_JPY S5" in run.stdout
    both = quantmesh("backtest", "--data", bar_spec(), "--strategy", "ma_cross", "--fast", "--mesh")
    assert both.returncode == 2 and "--fast and --mesh are two ways to run; choose one" in both.stderr
