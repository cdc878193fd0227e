"""What a backtest's charts show, and equity.png.

Three panels on one time axis:
- the price (mid) with every trade's entry (a triangle pointing the trade's way) and exit
  (a dot, green when the trade made money, red when it lost);
- the equity, in the account's currency with thousands separators, against buy-and-hold: the
  starting cash put into the instrument at the first mid and marked at each mid (shown when the
  account keeps the instrument's quote currency, where that is a like-for-like comparison);
- the drawdown from the highest equity so far, in percent.

The title names the strategy, the instrument, the timeframe, the data files and the period.
Prices are analytics here (floats); the money in the report and trades.csv stays exact.
The --html report (html_report.py) draws the same `Chart`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np

from services.backtest.cache import micros
from services.backtest.report import EquityPoint
from services.backtest.trades import Trade
from services.position.currency import quote_currency

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Points of a line worth drawing: a month of ticks has more than a chart has pixels.
MAX_POINTS = 4000


@dataclass(frozen=True, slots=True)
class Series:
    times: tuple[datetime, ...]
    values: tuple[float, ...]


def _thin(times: np.ndarray, values: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` samples, the first and last kept, evenly through the series."""
    if len(times) <= points:
        return times, values
    index = np.unique(np.linspace(0, len(times) - 1, points).round().astype(np.int64))
    return times[index], values[index]


def price_path(time_us: np.ndarray, bid: np.ndarray, ask: np.ndarray, price_scale: int, *,
               start: datetime | None = None, end: datetime | None = None, points: int = MAX_POINTS) -> Series:
    """The mid of the ticks within [start, end), thinned to `points` (tick columns as the tick cache keeps them:
    microseconds since the epoch, prices as integers of 10**-price_scale)."""
    first = 0 if start is None else int(np.searchsorted(time_us, micros(start), "left"))
    last = len(time_us) if end is None else int(np.searchsorted(time_us, micros(end), "left"))
    times, mids = _thin(time_us[first:last], (bid[first:last] + ask[first:last]) / (2 * 10 ** price_scale), points)
    return Series(tuple(_EPOCH + timedelta(microseconds=int(t)) for t in times), tuple(float(m) for m in mids))


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    title: str
    instrument: str
    currency: str  # the account's
    starting_cash: Decimal
    curve: Sequence[EquityPoint]
    trades: Sequence[Trade]
    prices: Series | None = None

    def period(self) -> str:
        if not self.curve:
            return "no data"
        return f"{self.curve[0].time:%Y-%m-%d %H:%M} to {self.curve[-1].time:%Y-%m-%d %H:%M} UTC"

    def equity(self) -> Series:
        times = np.array([p.time.timestamp() for p in self.curve])
        values = np.array([float(p.equity) for p in self.curve])
        thinned_times, thinned = _thin(times, values, MAX_POINTS)
        return Series(tuple(datetime.fromtimestamp(t, timezone.utc) for t in thinned_times),
                      tuple(float(v) for v in thinned))

    def drawdown(self) -> Series:
        """Percent below the highest equity so far (0 or negative)."""
        equity = self.equity()
        values = np.array(equity.values)
        peak = np.maximum.accumulate(values) if len(values) else values
        with np.errstate(divide="ignore", invalid="ignore"):
            percent = np.where(peak > 0, 100 * (values - peak) / peak, 0.0)
        return Series(equity.times, tuple(float(v) for v in percent))

    def buy_and_hold(self) -> Series | None:
        """The starting cash in the instrument from the first mid, marked at each mid; None where that is
        not in the account's currency (or there is no price)."""
        if not self.prices or not self.prices.values or (self.currency and
                                                         self.currency != quote_currency(self.instrument)):
            return None
        first = self.prices.values[0]
        cash = float(self.starting_cash)
        return Series(self.prices.times, tuple(cash * mid / first for mid in self.prices.values))


def plot_equity(chart: Chart, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    path.parent.mkdir(parents=True, exist_ok=True)
    unit = chart.currency or quote_currency(chart.instrument)
    fig, (price, money, drawdown) = plt.subplots(3, 1, figsize=(12, 8.5), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 2.2, 1]})
    _price_panel(price, chart)
    equity = chart.equity()
    money.plot(equity.times, equity.values, color="#1f5fa8", linewidth=1.2, label=f"equity ({unit})")
    if (held := chart.buy_and_hold()) is not None:
        money.plot(held.times, held.values, color="#8a8a8a", linewidth=1.0, linestyle="--",
                   label=f"buy and hold ({unit})")
    money.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    money.set_ylabel(f"equity, {unit}")
    money.legend(loc="upper left", fontsize=8)
    money.grid(alpha=0.3)
    down = chart.drawdown()
    drawdown.fill_between(down.times, down.values, 0, color="#c0392b", alpha=0.35, linewidth=0)
    drawdown.set_ylabel("drawdown %")
    drawdown.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.2f}"))
    drawdown.grid(alpha=0.3)
    price.set_title(f"{chart.title}\n{chart.period()}", fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _price_panel(axes, chart: Chart) -> None:
    prices = chart.prices
    if prices is not None and prices.values:
        axes.plot(prices.times, prices.values, color="#444444", linewidth=0.7, label=f"{chart.instrument} mid")
    trades = chart.trades
    size = 36 if len(trades) < 50 else 16 if len(trades) < 300 else 7  # hundreds of markers must not hide the price
    for direction, marker, colour in (("long", "^", "#1f5fa8"), ("short", "v", "#e67e22")):
        chosen = [t for t in trades if t.direction == direction]
        if chosen:
            axes.scatter([t.entry_time for t in chosen], [float(t.entry_price) for t in chosen], marker=marker, s=size,
                         color=colour, label=f"{direction} entry", zorder=3, linewidths=0)
    for won, colour, label in ((True, "#2a9d4b", "exit, won"), (False, "#c0392b", "exit, lost")):
        chosen = [t for t in trades if (t.net_pnl > 0) == won]
        if chosen:
            axes.scatter([t.exit_time for t in chosen], [float(t.exit_price) for t in chosen], marker="o",
                         s=size * 0.6, color=colour, label=label, zorder=3, linewidths=0)
    axes.set_ylabel(f"price, {quote_currency(chart.instrument)}")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize=8, ncol=5)


async def prices_of(data, start: datetime | None, end: datetime | None) -> Series:
    """The mid of `data` (a services.backtest.data.MarketData) within [start, end), from its tick columns."""
    columns = await data.columns()
    return price_path(columns.time_us, columns.bid, columns.ask, columns.price_scale, start=start, end=end)
