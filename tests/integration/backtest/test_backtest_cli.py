"""`quantmesh backtest` as a user runs it: report, trades.csv, equity.png, and clear refusals."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys

from tests.support.data import bar_spec
from tests.support.postgres import PROJECT_ROOT


def quantmesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=300)


def bars() -> str:
    return bar_spec()


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


HISTDATA = PROJECT_ROOT / "tests" / "data" / "histdata-usdjpy-ticks-2013-01-01.csv.gz"
SMALL = ("--strategy", "ma_cross", "--params", "fast_period=2", "slow_period=5", "--no-progress")


def test_a_histdata_tick_file_backtests_in_new_york_standard_time_and_says_so(tmp_path):
    run = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert ("data: histdata-usdjpy-ticks-2013-01-01.csv.gz: HistData ticks (date time, bid, ask, volume; no header); "
            "times without an offset read as UTC-05:00 (HistData's New York standard time, no daylight saving) "
            "(--data-timezone to change)") in run.stderr
    assert "period                      2013-01-01 22:" in run.stdout  # 17:00 New York standard time is 22:00 UTC
    assert "1,000 in" in run.stdout
    shifted = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--out", str(tmp_path), "--data-timezone", "UTC")
    assert shifted.returncode == 0 and "period                      2013-01-01 17:" in shifted.stdout
    bad_zone = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--data-timezone", "EST5EDT6")
    assert bad_zone.returncode == 2 and "--data-timezone 'EST5EDT6' is not a timezone" in bad_zone.stderr


def test_crypto_trade_prints_in_parquet_backtest_as_a_last_price_series_with_volume(tmp_path):
    import polars as pl
    from datetime import datetime, timedelta, timezone
    from random import Random

    rng, price, start = Random(7), 15_000_000, datetime(2026, 1, 5, tzinfo=timezone.utc)
    rows = []
    for i in range(3_000):
        price += rng.choice((-1, 1)) * rng.randint(0, 2_000)
        rows.append((start + timedelta(milliseconds=1_300 * i), 1000 + i, str(price),
                     f"{rng.randint(1, 5_000) / 10_000:.4f}", rng.random() < 0.5))
    frame = pl.DataFrame(rows, schema=["timestamp", "trade_id", "price", "quantity", "buyer_maker"], orient="row")
    frame.write_parquet(tmp_path / "btcjpy-trades.parquet")
    run = quantmesh("backtest", "--data", str(tmp_path / "btcjpy-trades.parquet"), *SMALL, "--instrument", "BTC_JPY",
                    "--params", "fast_period=2", "slow_period=5", "units=0.01", "--spread", "1000",
                    "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "trade prints (time, price, quantity[, aggressor]); bid = ask = the trade price" in run.stderr
    assert "3,000 in" in run.stdout and "ma_cross on BTC_JPY M1" in run.stdout


def test_a_file_no_row_of_which_parses_exits_2_naming_the_first_bad_line_and_writes_nothing(tmp_path):
    data = tmp_path / "ticks.csv"
    data.write_text("timestamp,bid,ask\n2013-01-01T22:00:00Z,86.655,abc\n2013-01-01T22:00:01Z,,86.7\n")
    run = quantmesh("backtest", "--data", str(data), *SMALL, "--out", str(tmp_path / "out"))
    assert run.returncode == 2
    assert f"not one of the 2 rows of {data} is usable; the first: {data}:2: ask='abc' is not a number" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_window_with_no_data_exits_2_and_leaves_the_last_outputs_as_they_were(tmp_path):
    (tmp_path / "trades.csv").write_text("the last run's trades\n")
    (tmp_path / "equity.png").write_bytes(b"the last run's curve")
    run = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--from", "2014-01-01", "--out", str(tmp_path))
    assert run.returncode == 2
    assert (f"no tick of {HISTDATA} falls in the window [2014-01-01, the end); the data runs from "
            "2013-01-01T22:00:00.295000+00:00 to 2013-01-01T22:35:13.494000+00:00") in run.stderr
    before = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--to", "2013-01-01T12:00", "--out", str(tmp_path))
    assert before.returncode == 2 and ("[the start, 2013-01-01T12:00); the data starts at "
                                       "2013-01-01T22:00:00.295000+00:00") in before.stderr
    assert (tmp_path / "trades.csv").read_text() == "the last run's trades\n"
    assert (tmp_path / "equity.png").read_bytes() == b"the last run's curve"
    backwards = quantmesh("backtest", "--data", str(HISTDATA), *SMALL, "--from", "2013-01-02", "--to", "2013-01-01")
    assert backwards.returncode == 2 and "is not before --to" in backwards.stderr


def test_skipped_rows_are_counted_and_summarized_once_not_logged_line_by_line(tmp_path):
    good = [line for line in gzip.open(HISTDATA, "rt").read().splitlines()]
    broken = [f"{line.split(',')[0]},x,86.7,0" for line in good[1:31]]
    data = tmp_path / "mixed.csv"
    data.write_text("\n".join(good[:1] + broken + good[31:]) + "\n")
    run = quantmesh("backtest", "--data", str(data), *SMALL, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "quantmesh backtest: skipped 30 of 1,000 rows of mixed.csv:\n  mixed.csv:2: bid='x' is not a number\n" \
        in run.stderr
    assert run.stderr.count("\n  mixed.csv:") == 5 and "  ... and 25 more" in run.stderr
    assert "malformed" not in run.stderr
