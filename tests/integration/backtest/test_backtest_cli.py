"""`quantmesh backtest` as a user runs it: report, trades.csv, equity.png, and clear refusals."""

from __future__ import annotations

import csv
import subprocess
import sys

from tests.support.data import shared_data_dir
from tests.support.postgres import PROJECT_ROOT


def quantmesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300)


def bars() -> str:
    data = shared_data_dir()
    return f"{data / 'usdjpy-m1-bid-2013-02.csv'},{data / 'usdjpy-m1-ask-2013-02.csv'}"


def test_backtest_writes_report_trades_and_equity_curve(tmp_path):
    run = quantmesh("backtest", "--data", bars(), "--strategy", "ma_cross", "--params", "fast_period=5",
                    "slow_period=20", "--from", "2013-02-04", "--to", "2013-02-05", "--out", str(tmp_path),
                    "--no-progress")
    assert run.returncode == 0, run.stderr
    assert "ma_cross on USD_JPY M1" in run.stdout and "win rate" in run.stdout and "max drawdown" in run.stdout
    with (tmp_path / "trades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "a day of USD/JPY with a 5/20 SMA cross trades at least once"
    assert all(r["entry_time"] >= "2013-02-04" and r["exit_time"] < "2013-02-05" for r in rows)
    assert f"trades                      {len(rows)}" in run.stdout
    png = (tmp_path / "equity.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_unknown_strategy_bad_params_and_bad_time_are_refused_with_a_sentence(tmp_path):
    unknown = quantmesh("backtest", "--data", bars(), "--strategy", "ma_crossed", "--out", str(tmp_path))
    assert unknown.returncode == 2 and "unknown strategy 'ma_crossed'; known strategies: " in unknown.stderr
    bad_param = quantmesh("backtest", "--data", bars(), "--strategy", "ma_cross", "--params", "fast_period=50")
    assert bad_param.returncode == 2 and "'fast_period' (50) must be below 'slow_period' (30)" in bad_param.stderr
    bad_time = quantmesh("backtest", "--data", bars(), "--strategy", "ma_cross", "--from", "yesterday")
    assert bad_time.returncode == 2 and "--from 'yesterday' is not an ISO 8601 time" in bad_time.stderr
    missing = quantmesh("backtest", "--data", str(tmp_path / "nope.csv"), "--strategy", "ma_cross")
    assert missing.returncode == 2 and "nope.csv does not exist" in missing.stderr
