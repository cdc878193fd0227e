"""The backtest report: trades, win rate, PnL, return, max drawdown, Sharpe, exposure.

Money follows the position plane's rules: the equity curve, return and drawdown are the
ledger's, in the account's currency. Given the ledger's final figures (`account`), the
net PnL, commission and financing are the ledger's too (each fill converted at its own
rate, financing charged at the rollovers), and money the ledger could not convert is
shown as such; without them, the net PnL and commission are the trades' sums, in the
instrument's quote currency. Each trade (trades.csv) stays in its quote currency, and says which.
A figure a run cannot define is "n/a", never a zero: the win rate without trades, the return
without starting cash, the Sharpe ratio with fewer than three days of equity (two daily returns).
Money and quantities are written out in full ("10000", never "1E+4").

The charts (equity.png, the --html report) are services/backtest/charts.py and html_report.py.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from services.backtest.trades import Trade
from services.common.wire import decimal_text
from services.position.currency import quote_currency


@dataclass(frozen=True, slots=True, kw_only=True)
class EquityPoint:
    time: datetime
    equity: Decimal
    exposed: bool  # a position was open at this sample


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    trades: int
    wins: int
    win_rate: float | None  # None: no trade
    net_pnl: Decimal
    commission: Decimal
    return_pct: float | None  # None: no starting cash to compare with
    max_drawdown_pct: float
    sharpe: float | None  # None: fewer than two daily returns, or no variation at all
    exposure_pct: float
    start: datetime | None
    end: datetime | None
    bars: int
    currency: str = ""
    financing: Decimal = Decimal(0)
    unconverted: tuple[tuple[str, Decimal], ...] = ()


def summarize(trades: Sequence[Trade], curve: Sequence[EquityPoint], starting_cash: Decimal, *,
              account=None, currency: str = "") -> Summary:
    """`account`: the ledger's final AccountFigures (realized, commission, financing in `currency`)."""
    wins = sum(1 for t in trades if t.net_pnl > 0)
    if account is not None:
        net = account.realized_pnl - account.commission + account.financing
        commission, financing, unconverted = account.commission, account.financing, account.unconverted
    else:
        net = sum((t.net_pnl for t in trades), Decimal(0))
        commission, financing, unconverted = sum((t.commission for t in trades), Decimal(0)), Decimal(0), ()
    final = curve[-1].equity if curve else starting_cash
    peak, max_dd = Decimal(0), 0.0
    for point in curve:
        peak = max(peak, point.equity)
        if peak > 0:
            max_dd = max(max_dd, float((peak - point.equity) / peak))
    return Summary(
        trades=len(trades), wins=wins, win_rate=wins / len(trades) if trades else None, net_pnl=net,
        commission=commission, currency=currency, financing=financing, unconverted=unconverted,
        return_pct=float((final - starting_cash) / starting_cash) * 100 if starting_cash else None,
        max_drawdown_pct=max_dd * 100, sharpe=daily_sharpe(curve),
        exposure_pct=100 * sum(p.exposed for p in curve) / len(curve) if curve else 0.0,
        start=curve[0].time if curve else None, end=curve[-1].time if curve else None, bars=len(curve))


def daily_sharpe(curve: Sequence[EquityPoint]) -> float | None:
    """Annualized Sharpe of daily equity returns (last sample of each UTC day, 252 days, no risk-free rate);
    None when it is not defined: fewer than two daily returns (three days), or returns that never vary."""
    closes: dict = {}
    for point in curve:
        closes[point.time.date()] = float(point.equity)
    values = list(closes.values())
    returns = [b / a - 1 for a, b in zip(values, values[1:]) if a]
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return mean / math.sqrt(var) * math.sqrt(252) if var > 0 else None


def percent(value: float | None, *, signed: bool = False) -> str:
    """A percentage with two places, or four when two would show a change as zero; "n/a" for None."""
    if value is None:
        return "n/a"
    places = 4 if value and abs(value) < 0.005 else 2
    return f"{value:+.{places}f} %" if signed else f"{value:.{places}f} %"


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    """The report's figures as (name, text): the terminal report and the HTML report show the same."""
    span = f"{summary.start:%Y-%m-%d %H:%M} -> {summary.end:%Y-%m-%d %H:%M}" if summary.start else "no data"
    unit = f" {summary.currency}" if summary.currency else ""
    return [
        ("period", span), ("decision bars", f"{summary.bars:,}"), ("trades", f"{summary.trades:,}"),
        ("win rate", "n/a (no trade)" if summary.win_rate is None else f"{summary.win_rate:.1%}"),
        ("net PnL", f"{summary.net_pnl:,.2f}{unit}"), ("commission", f"{summary.commission:,.2f}{unit}"),
        *([("financing", f"{summary.financing:,.2f}{unit}")] if summary.financing else []),
        *([("NOT converted", ", ".join(f"{a:,.2f} {c}" for c, a in summary.unconverted)
            + f" (no quote into{unit}; left out of every figure)")] if summary.unconverted else []),
        ("return", percent(summary.return_pct, signed=True)),
        ("max drawdown", percent(summary.max_drawdown_pct)),
        ("Sharpe (daily, annualized)", "n/a (needs equity on 3 days or more, and some variation)"
         if summary.sharpe is None else f"{summary.sharpe:.2f}"),
        ("exposure", f"{summary.exposure_pct:.1f} % of bars"),
    ]


def format_summary(summary: Summary, *, title: str) -> str:
    rows = summary_rows(summary)
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"  {k:<{width}}  {v}" for k, v in rows])


def write_trades_csv(trades: Sequence[Trade], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["strategy", "instrument", "direction", "size", "entry_time", "entry_price", "exit_time",
                         "exit_price", "gross_pnl", "commission", "net_pnl", "currency"])
        for t in trades:
            writer.writerow([t.strategy, t.instrument, t.direction, decimal_text(t.size), t.entry_time.isoformat(),
                             decimal_text(t.entry_price), t.exit_time.isoformat(), decimal_text(t.exit_price),
                             decimal_text(t.gross_pnl), decimal_text(t.commission), decimal_text(t.net_pnl),
                             quote_currency(t.instrument)])
