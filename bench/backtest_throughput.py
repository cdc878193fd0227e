"""Backtest throughput on the USD/JPY month in data/ (gzipped): M1 bars per second.

quantmesh's in-process backtest (ma_cross, fast 10 / slow 30, the planes' own domain code:
aggregator, factor engine, strategy desks, order engine + paper venue, position ledger)
against two baselines measured in the same run on the same mid-price bars: backtesting.py's
SmaCross (10/30) and a backtrader SMA cross (10/30). Risk limits are set out of reach so all
three trade every cross. quantmesh does more per bar (bid/ask candles at six timeframes
aggregated from four ticks per bar, TA-Lib factors, write-ahead order states, an exact
Decimal ledger), so the ratio says what that costs, not who is "right".

The mesh transport (`quantmesh backtest --mesh`: control, market_data, order and position as
processes on a fresh PostgreSQL, lock-stepped over gRPC) runs the same strategy on the first
--mesh-bars bars, next to the in-process transport with the same live-like fill rule (fill at
the next quote), and the script checks their trades are identical. Plane start-up is timed
apart from the run.

    ./qm python bench/backtest_throughput.py [--bars N] [--mesh-bars N | --no-mesh]
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # quiets a C-core INFO line when the planes are forked

import argparse  # noqa: E402
import asyncio
import time
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BID, ASK = DATA / "usdjpy-m1-bid-2013-02.csv.gz", DATA / "usdjpy-m1-ask-2013-02.csv.gz"


def mid_frame(bars: int | None) -> pd.DataFrame:
    bid = pd.read_csv(BID, parse_dates=["timestamp"], index_col="timestamp")
    ask = pd.read_csv(ASK, parse_dates=["timestamp"], index_col="timestamp")
    mid = (bid + ask) / 2
    mid.columns = ["Open", "High", "Low", "Close"]
    mid.index = mid.index.tz_convert(None)
    return mid.iloc[:bars] if bars else mid


#: Protective exits and risk limits out of reach, so every engine trades every cross.
EXITS_OFF = {"stop_loss_pips": "100000", "take_profit_pips": "100000", "max_hold_minutes": "1000000000"}
LIMITS_OFF = {"QUANTMESH_RISK_MAX_ORDER_QUANTITY": "1000000000", "QUANTMESH_RISK_MAX_POSITION_PER_INSTRUMENT": "1000000000",
              "QUANTMESH_RISK_MAX_POSITION_PER_STRATEGY": "1000000000", "QUANTMESH_RISK_MAX_DRAWDOWN_FRACTION": "1",
              "QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000000", "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000"}


def _settings(fill_at: str):
    from services.backtest.inprocess import BacktestSettings
    from services.common.config import Env
    from services.order.risk import RiskLimits

    return BacktestSettings(limits=RiskLimits.from_env(Env(LIMITS_OFF)), fill_at=fill_at)


def _limited(bars: int | None, result):
    from services.backtest.data import ticks_from

    async def ticks():
        async for tick in ticks_from(f"{BID},{ASK}", "USD_JPY"):
            if bars and result.decision_bars >= bars:
                break
            yield tick

    return ticks()


def run_quantmesh(bars: int | None, fill_at: str = "current"):
    from services.backtest.inprocess import InProcessBacktest
    from services.backtest.trades import round_trips
    from services.strategies.registry import load_strategy

    backtest = InProcessBacktest(load_strategy("ma_cross", EXITS_OFF), _settings(fill_at))
    began = time.perf_counter()
    result = asyncio.run(backtest.run(_limited(bars, backtest.result)))
    elapsed = time.perf_counter() - began
    return elapsed, result.decision_bars, round_trips(result.fills)[0]


def run_quantmesh_mesh(bars: int | None):
    """Returns (start-up seconds, run seconds, decision bars, trades)."""
    import tempfile

    from services.backtest.mesh import MeshBacktest
    from services.backtest.trades import round_trips
    from services.cli.mesh_planes import mesh_planes
    from services.strategies.registry import load_strategy

    settings = _settings("next")
    os.environ.update(LIMITS_OFF)  # the order plane process reads its limits from the environment

    async def go():
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="qm-bench-mesh-") as work:
            async with mesh_planes(Path(work), instrument="USD_JPY", starting_cash=settings.starting_cash) as addresses:
                started = time.perf_counter()
                backtest = MeshBacktest(lambda: load_strategy("ma_cross", EXITS_OFF), addresses, settings)
                result = await backtest.run(_limited(bars, backtest.result))
                finished = time.perf_counter()
        if result.disagreements:
            raise SystemExit("the position plane disagrees with the fills: " + "; ".join(result.disagreements))
        return started - began, finished - started, result.decision_bars, round_trips(result.fills)[0]

    return asyncio.run(go())


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
    parser.add_argument("--mesh-bars", type=int, default=2_000,
                        help="bars for the --mesh transport and its in-process twin (default 2,000; 0 = all)")
    parser.add_argument("--no-mesh", action="store_true", help="skip the --mesh measurement")
    args = parser.parse_args()
    frame = mid_frame(args.bars)
    q_time, q_bars, q_trades = run_quantmesh(args.bars)
    q_trades = len(q_trades)
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
    if args.no_mesh:
        return
    mesh_bars = args.mesh_bars or None
    n_time, n_bars, n_trades = run_quantmesh(mesh_bars, fill_at="next")
    startup, m_time, m_bars, m_trades = run_quantmesh_mesh(mesh_bars)
    print(f"\n--mesh against in-process, live-like fills (next quote), first {m_bars:,} bars:\n")
    print(f"  {'transport':<22} {'bars':>8} {'seconds':>9} {'bars/s':>10} {'trades':>7}")
    print(f"  {'in-process':<22} {n_bars:>8,} {n_time:>9.2f} {n_bars / n_time:>10,.0f} {len(n_trades):>7}")
    print(f"  {'mesh (gRPC, 4 procs)':<22} {m_bars:>8,} {m_time:>9.2f} {m_bars / m_time:>10,.1f} {len(m_trades):>7}")
    print(f"\n  mesh / in-process: {(m_bars / m_time) / (n_bars / n_time):.4f}x   "
          f"mesh / backtesting.py: {(m_bars / m_time) / (len(frame) / b_time):.4f}x   "
          f"mesh / backtrader: {(m_bars / m_time) / (len(frame) / t_time):.4f}x")
    print(f"  mesh start-up (PostgreSQL + 4 planes healthy): {startup:.1f} s, not in the figures above")
    same = n_trades == m_trades
    print(f"  trades identical to in-process: {'yes' if same else 'NO'} ({len(m_trades)} trades)")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
