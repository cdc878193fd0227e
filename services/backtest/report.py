"""The backtest report: trades, win rate, PnL, return, max drawdown, Sharpe, exposure.

Money follows the position plane's rules: the equity curve, return and drawdown are the
ledger's, in the account's currency. Given the ledger's final figures (`account`), the
net PnL, commission and financing are the ledger's too (each fill converted at its own
rate, financing charged at the rollovers), and money the ledger could not convert is
shown as such; without them, the net PnL and commission are the trades' sums, in the
instrument's quote currency. Each trade (trades.csv) stays in its quote currency.
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


@dataclass(frozen=True, slots=True, kw_only=True)
class EquityPoint:
    time: datetime
    equity: Decimal
    exposed: bool  # a position was open at this sample


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    trades: int
    wins: int
    win_rate: float
    net_pnl: Decimal
    commission: Decimal
    return_pct: float
    max_drawdown_pct: float
    sharpe: float
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
        trades=len(trades), wins=wins, win_rate=wins / len(trades) if trades else 0.0, net_pnl=net,
        commission=commission, currency=currency, financing=financing, unconverted=unconverted,
        return_pct=float((final - starting_cash) / starting_cash) * 100 if starting_cash else 0.0,
        max_drawdown_pct=max_dd * 100, sharpe=daily_sharpe(curve),
        exposure_pct=100 * sum(p.exposed for p in curve) / len(curve) if curve else 0.0,
        start=curve[0].time if curve else None, end=curve[-1].time if curve else None, bars=len(curve))


def daily_sharpe(curve: Sequence[EquityPoint]) -> float:
    """Annualized Sharpe of daily equity returns (last sample of each UTC day, 252 days, no risk-free rate)."""
    closes: dict = {}
    for point in curve:
        closes[point.time.date()] = float(point.equity)
    values = list(closes.values())
    returns = [b / a - 1 for a, b in zip(values, values[1:]) if a]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return mean / math.sqrt(var) * math.sqrt(252) if var > 0 else 0.0


def format_summary(summary: Summary, *, title: str) -> str:
    span = f"{summary.start:%Y-%m-%d %H:%M} -> {summary.end:%Y-%m-%d %H:%M}" if summary.start else "no data"
    unit = f" {summary.currency}" if summary.currency else ""
    rows = [
        ("period", span), ("decision bars", f"{summary.bars:,}"), ("trades", f"{summary.trades:,}"),
        ("win rate", f"{summary.win_rate:.1%}"), ("net PnL", f"{summary.net_pnl:,.2f}{unit}"),
        ("commission", f"{summary.commission:,.2f}{unit}"),
        *([("financing", f"{summary.financing:,.2f}{unit}")] if summary.financing else []),
        *([("NOT converted", ", ".join(f"{a:,.2f} {c}" for c, a in summary.unconverted)
            + f" (no quote into{unit}; left out of every figure)")] if summary.unconverted else []),
        ("return", f"{summary.return_pct:+.2f} %"),
        ("max drawdown", f"{summary.max_drawdown_pct:.2f} %"), ("Sharpe (daily, annualized)", f"{summary.sharpe:.2f}"),
        ("exposure", f"{summary.exposure_pct:.1f} % of bars"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, "-" * len(title)] + [f"  {k:<{width}}  {v}" for k, v in rows])


def write_trades_csv(trades: Sequence[Trade], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["strategy", "instrument", "direction", "size", "entry_time", "entry_price", "exit_time",
                         "exit_price", "gross_pnl", "commission", "net_pnl"])
        for t in trades:
            writer.writerow([t.strategy, t.instrument, t.direction, t.size, t.entry_time.isoformat(), t.entry_price,
                             t.exit_time.isoformat(), t.exit_price, t.gross_pnl, t.commission, t.net_pnl])


def plot_equity(curve: Sequence[EquityPoint], trades: Sequence[Trade], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    times = [p.time for p in curve]
    equity = [float(p.equity) for p in curve]
    peak, drawdown = float("-inf"), []
    for value in equity:
        peak = max(peak, value)
        drawdown.append(100 * (value - peak) / peak if peak > 0 else 0.0)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(times, equity, color="#1f5fa8", linewidth=1.2, label="equity")
    if times:
        for won, colour, label in ((True, "#2a9d4b", "winning exit"), (False, "#c0392b", "losing exit")):
            chosen = [t for t in trades if (t.net_pnl > 0) == won]
            top.scatter([t.exit_time for t in chosen], [equity[_index_at(times, t.exit_time)] for t in chosen],
                        s=10, color=colour, label=label, zorder=3)
    top.set_title(title)
    top.set_ylabel("equity")
    top.ticklabel_format(axis="y", style="plain", useOffset=False)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.fill_between(times, drawdown, 0, color="#c0392b", alpha=0.35)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _index_at(times: Sequence[datetime], moment: datetime) -> int:
    import bisect

    return max(0, min(len(times) - 1, bisect.bisect_left(times, moment)))
