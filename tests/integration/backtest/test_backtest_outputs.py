"""What a one-day backtest shows: a progress bar that ends at 100 % of the window, figures that
cannot be defined shown as n/a, trades.csv with its currency and no exponents, equity.png and a
self-contained interactive report.html."""

from __future__ import annotations

import csv
import re
import subprocess
import sys

from tests.support.data import bar_spec
from tests.support.postgres import PROJECT_ROOT


def test_a_one_day_backtest_reports_what_it_can_and_says_n_a_for_the_rest(tmp_path):
    run = subprocess.run([sys.executable, "-m", "services.cli", "backtest", "--data", bar_spec(), "--strategy",
                          "ma_cross", "--params", "fast_period=5", "slow_period=20", "--from", "2013-02-04", "--to",
                          "2013-02-05", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                          "--html"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # The window's own ticks are the bar's total: four a minute of the day's bars, and it ends full.
    final = re.findall(r"(\d+(?:\.\d+)?k?)/(\d+(?:\.\d+)?k?) \[", run.stderr)[-1]
    assert final[0] == final[1] == "5.75k", run.stderr[-500:]
    assert "100%" in run.stderr
    assert "Sharpe (daily, annualized)  n/a (needs equity on 3 days or more" in run.stdout
    assert re.search(r"return +[+-]\d+\.\d{2,4} %", run.stdout) and "E+" not in run.stdout
    with (tmp_path / "out" / "trades.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["currency"] for r in rows} == {"JPY"} and {r["size"] for r in rows} == {"10000"}
    assert not any("E" in value for row in rows for key, value in row.items() if key not in ("strategy", "direction"))
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<canvas" in page and '"trades":[{' in page and "win rate" in page
    assert not re.search(r"(src|href)=\"?https?:", page), "the report fetches nothing"
    assert "report:  " in run.stdout and (tmp_path / "out" / "equity.png").read_bytes().startswith(b"\x89PNG")
