"""Backtest throughput on the USD/JPY month in ../shared/data: M1 bars per second.

quantmesh's in-process backtest (ma_cross, fast 10 / slow 30, the planes' own domain code:
aggregator, factor engine, strategy desks, order engine + paper venue, position ledger)
against two baselines measured in the same run on the same mid-price bars: backtesting.py's
SmaCross (10/30) and a backtrader SMA cross (10/30). Risk limits are set out of reach so all
three trade every cross. quantmesh does more per bar (bid/ask candles at six timeframes
aggregated from four ticks per bar, TA-Lib factors, write-ahead order states, an exact
Decimal ledger), so the ratio says what that costs, not who is "right".

    python bench/backtest_throughput.py [--bars N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BID, ASK = DATA / "usdjpy-m1-bid-2013-02.csv", DATA / "usdjpy-m1-ask-2013-02.csv"


def mid_frame(bars: int | None) -> pd.DataFrame:
    bid = pd.read_csv(BID, parse_dates=["timestamp"], index_col="timestamp")
    ask = pd.read_csv(ASK, parse_dates=["timestamp"], index_col="timestamp")
    mid = (bid + ask) / 2
    mid.columns = ["Open", "High", "Low", "Close"]
    mid.index = mid.index.tz_convert(None)
    return mid.iloc[:bars] if bars else mid


def run_quantmesh(bars: int | None) -> tuple[float, int, int]:
    from services.backtest.data import ticks_from
    from services.backtest.inprocess import BacktestSettings, InProcessBacktest
    from services.backtest.trades import round_trips
    from services.order.risk import RiskLimits
    from services.strategies.registry import load_strategy

    strategy = load_strategy("ma_cross", {"stop_loss_pips": "100000", "take_profit_pips": "100000",
                                          "max_hold_minutes": "1000000000"})
    limits = RiskLimits(max_order_quantity=Decimal(10**9), max_position_per_instrument=Decimal(10**9),
                        max_position_per_strategy=Decimal(10**9), max_drawdown_fraction=Decimal(1),
                        max_consecutive_losses=10**6, max_orders_per_second=Decimal(10**6))
    backtest = InProcessBacktest(strategy, BacktestSettings(limits=limits, fill_at="current"))

    async def limited():
        async for tick in ticks_from(f"{BID},{ASK}", "USD_JPY"):
            if bars and backtest.result.decision_bars >= bars:
                break
            yield tick

    began = time.perf_counter()
    result = asyncio.run(backtest.run(limited()))
    elapsed = time.perf_counter() - began
    return elapsed, result.decision_bars, len(round_trips(result.fills)[0])


def run_backtesting_py(frame: pd.DataFrame) -> tuple[float, int]:
    from backtesting import Backtest
    from backtesting.test._test import SmaCross

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        stats = Backtest(frame, SmaCross, cash=10_000_000, finalize_trades=False).run()
        return time.perf_counter() - began, len(stats._trades)


def run_backtrader(frame: pd.DataFrame) -> tuple[float, int]:
    import backtrader as bt

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=30))
            self.trades = 0

        def notify_trade(self, trade):
            self.trades += trade.isclosed

        def next(self):
            if self.cross > 0:
                self.close()
                self.buy(size=10_000)
            elif self.cross < 0:
                self.close()
                self.sell(size=10_000)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(10_000_000)
    began = time.perf_counter()
    strategy = cerebro.run()[0]
    return time.perf_counter() - began, strategy.trades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=None, help="only the first N bars (default: the whole month)")
    args = parser.parse_args()
    frame = mid_frame(args.bars)
    q_time, q_bars, q_trades = run_quantmesh(args.bars)
    b_time, b_trades = run_backtesting_py(frame)
    t_time, t_trades = run_backtrader(frame)
    rows = [("quantmesh in-process", q_bars, q_time, q_trades), ("backtesting.py", len(frame), b_time, b_trades),
            ("backtrader", len(frame), t_time, t_trades)]
    print(f"USD/JPY M1, 2013-02 ({len(frame):,} bars), SMA cross 10/30\n")
    print(f"  {'engine':<22} {'bars':>8} {'seconds':>9} {'bars/s':>10} {'trades':>7}")
    for name, bars, seconds, trades in rows:
        print(f"  {name:<22} {bars:>8,} {seconds:>9.2f} {bars / seconds:>10,.0f} {trades:>7}")
    q_rate = q_bars / q_time
    print(f"\n  quantmesh / backtesting.py: {q_rate / (len(frame) / b_time):.3f}x   "
          f"quantmesh / backtrader: {q_rate / (len(frame) / t_time):.3f}x")
    print("  (--mesh throughput: see the closing note; not measured by this script)")


if __name__ == "__main__":
    main()
