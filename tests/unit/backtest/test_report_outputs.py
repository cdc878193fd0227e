"""The report's figures and charts: n/a where a figure is not defined, money without exponents,
trades.csv's currency, buy-and-hold only where it compares like with like, a page that needs no network."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import numpy as np

from services.backtest.charts import Chart, plot_equity, price_path
from services.backtest.html_report import page_data, write_html_report
from services.backtest.report import EquityPoint, format_summary, summarize, summary_rows, write_trades_csv
from services.backtest.trades import Trade

T0 = datetime(2013, 2, 4, tzinfo=timezone.utc)


def curve(*equities: str, step=timedelta(hours=1)) -> list[EquityPoint]:
    return [EquityPoint(time=T0 + i * step, equity=D(e), exposed=True) for i, e in enumerate(equities)]


def trade(net: str, minutes: int = 0) -> Trade:
    return Trade(strategy="s", instrument="USD_JPY", direction="long", size=D("1E+4"),
                 entry_time=T0 + timedelta(minutes=minutes), entry_price=D("92.5"),
                 exit_time=T0 + timedelta(minutes=minutes + 5), exit_price=D("92.6"), gross_pnl=D(net), commission=D(0))


def test_a_single_day_has_no_sharpe_and_no_trades_have_no_win_rate():
    summary = summarize([], curve("10000000", "10000600", "10000410"), D(10_000_000), currency="JPY")
    assert summary.sharpe is None and summary.win_rate is None
    text = format_summary(summary, title="t")
    assert "Sharpe (daily, annualized)  n/a" in text and "win rate                    n/a (no trade)" in text
    assert "return                      +0.0041 %" in text  # four places where two would say +0.00


def test_three_days_of_varying_equity_have_a_sharpe():
    summary = summarize([trade("100")], curve("1000", "1010", "1005", "1030", step=timedelta(days=1)), D(1000))
    assert summary.sharpe is not None and dict(summary_rows(summary))["return"] == "+3.00 %"


def test_trades_csv_names_the_currency_and_writes_numbers_out(tmp_path):
    write_trades_csv([trade("1E+3")], tmp_path / "trades.csv")
    with (tmp_path / "trades.csv").open() as handle:
        row = next(csv.DictReader(handle))
    assert (row["size"], row["gross_pnl"], row["net_pnl"], row["currency"]) == ("10000", "1000", "1000", "JPY")


def chart(currency: str = "JPY") -> Chart:
    times = np.array([int((T0 + timedelta(minutes=m)).timestamp() * 1_000_000) for m in range(10)])
    bid = np.array([92_500 + 10 * m for m in range(10)])
    return Chart(title="s on USD_JPY M1 (bid.csv.gz, ask.csv.gz)", instrument="USD_JPY", currency=currency,
                 starting_cash=D(10_000_000), curve=curve("10000000", "10001000", "9999000"),
                 trades=[trade("1000"), trade("-500", 6)], prices=price_path(times, bid, bid + 4, 3))


def test_buy_and_hold_is_the_cash_marked_at_the_mid_when_the_account_holds_the_quote_currency():
    held = chart().buy_and_hold()
    assert held.values[0] == 10_000_000 and abs(held.values[-1] - 10_000_000 * 92.592 / 92.502) < 1e-6
    assert chart(currency="USD").buy_and_hold() is None  # not like for like: no line rather than a wrong one


def test_price_path_keeps_the_window_and_thins_long_series():
    times = np.arange(0, 100_000, dtype=np.int64) * 1_000_000 + int(T0.timestamp() * 1_000_000)
    prices = np.full(100_000, 92_500)
    path = price_path(times, prices, prices, 3, start=T0 + timedelta(seconds=10), points=500)
    assert len(path.times) == 500 and path.times[0] == T0 + timedelta(seconds=10) and path.values[0] == 92.5


def test_equity_png_and_a_self_contained_page(tmp_path):
    plot_equity(chart(), tmp_path / "equity.png")
    assert (tmp_path / "equity.png").read_bytes().startswith(b"\x89PNG")
    summary = summarize([trade("1000")], chart().curve, D(10_000_000), currency="JPY")
    write_html_report(chart(), summary_rows(summary), tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "http" not in page.lower().replace("http-equiv", "")  # nothing to fetch
    assert "<th>net PnL</th><td>1,000.00 JPY</td>" in page
    data = page_data(chart())
    assert [t["won"] for t in data["trades"]] == [True, False] and data["trades"][0]["size"] == "10000"
    assert data["currency"] == "JPY" and len(data["hold"]) == len(data["price"]) == 10
