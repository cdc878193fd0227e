"""Backtest throughput on the USD/JPY month in data/ (gzipped): M1 bars per second, one run.

The same SMA 10/30 cross (quantmesh's ma_cross, protective exits and risk limits out of
reach, always in the market) through:

- quantmesh's fast path (`quantmesh backtest --fast`): the timing includes opening the data
  spec and reading its tick cache, building the M1 candles from the ticks, the indicators, the
  decisions, the equity curve and the trades' exact Decimal net PnL. The cache holds only the
  parsed ticks (integer columns, memory-mapped); the one-time parse that fills it is reported
  apart, and so is the first of the timed runs;
- quantmesh's event path (in-process: the live worker, order engine, paper venue, ledger), and
  the same run with its two workers taken out, so the workers' share of a bar is a difference;
- quantmesh --mesh (control, market_data, order and position as processes on a fresh
  PostgreSQL, lock-stepped over gRPC) on the first --mesh-bars bars, next to its in-process
  twin with the live fill rule, checking the trades are identical; plane start-up apart; with the
  CPU each process (and PostgreSQL) spends per bar, and the rate the cores allow at that cost;
- backtesting.py, backtrader, vectorbt and NautilusTrader (bench/baselines.py) on the mid bars
  (built before the timing: their figures leave out loading the data and building the bars).
  vectorbt is timed as the fast path is: the best of 7 calls (after a first call that compiles
  its numba kernels, reported apart).

Then a 100-set sweep over the month (fast_period 5..50 step 5 x slow_period 55..145 step 10):
`quantmesh optimize`'s Sweep on --jobs processes against backtesting.py's Backtest.optimize on
the same grid. Trade counts are printed: the engines read the same rule, so they should agree
to within a few trades (fills on bid/ask against mid, float ties).

    ./qm python bench/backtest_throughput.py [--bars N] [--mesh-bars N | --no-mesh] [--no-sweep]
    ./qm python bench/backtest_throughput.py --mesh-only [--mesh-bars N]   # --mesh and its twin alone
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # quiets a C-core INFO line when the planes are forked
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars would bury the figures

import argparse  # noqa: E402
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import baselines  # noqa: E402

DATA = ROOT / "data"
BID, ASK = DATA / "usdjpy-m1-bid-2013-02.csv.gz", DATA / "usdjpy-m1-ask-2013-02.csv.gz"
SPEC = f"{BID},{ASK}"


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
              "QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000000", "QUANTMESH_RISK_MAX_ORDERS_PER_SECOND": "1000000",
              "QUANTMESH_RISK_MAX_DAILY_LOSS_FRACTION": "1", "QUANTMESH_RISK_MAX_RECENT_DRAWDOWN_FRACTION": "1"}


def _settings(fill_at: str):
    from services.backtest.inprocess import BacktestSettings
    from services.common.config import Env
    from services.order.risk import RiskLimits

    return BacktestSettings(limits=RiskLimits.from_env(Env(LIMITS_OFF)), fill_at=fill_at)


def _end_of(bars: int | None):
    """The time before which the first `bars` minutes lie (None: the whole month)."""
    if not bars:
        return None
    frame = mid_frame(bars + 1)
    return frame.index[-1].tz_localize("UTC").to_pydatetime() if len(frame) > bars else None


def run_fast(cache_dir: Path, end, repeats: int = 7):
    """Returns (seconds of each run, decision bars, trades): open the spec, read the cache, trade."""
    from services.backtest.cache import TickCache
    from services.backtest.data import MarketData
    from services.backtest.fast import FastBacktest, FastSettings
    from services.backtest.trades import round_trips
    from services.strategies.registry import load_strategy

    strategy = load_strategy("ma_cross", EXITS_OFF)
    times, result, trades = [], None, None
    for _ in range(repeats):
        began = time.perf_counter()
        columns = asyncio.run(MarketData(SPEC, "USD_JPY", cache=TickCache(cache_dir)).columns())
        result = FastBacktest(strategy, FastSettings(fill_at="current")).run(columns, None, end)
        trades, _ = result.closed_trades()  # the trades and their exact net PnL are part of the run
        times.append(time.perf_counter() - began)
    assert trades == len(round_trips(result.fills)[0])
    return times, result.decision_bars, trades


def _cached_ticks(cache_dir: Path, end):
    from services.backtest.cache import TickCache
    from services.backtest.data import MarketData

    return MarketData(SPEC, "USD_JPY", cache=TickCache(cache_dir)).ticks(None, end)


def run_quantmesh(cache_dir: Path, end, fill_at: str = "current"):
    from services.backtest.inprocess import InProcessBacktest
    from services.backtest.trades import round_trips
    from services.strategies.registry import load_strategy

    backtest = InProcessBacktest(load_strategy("ma_cross", EXITS_OFF), _settings(fill_at))
    began = time.perf_counter()
    result = asyncio.run(backtest.run(_cached_ticks(cache_dir, end)))
    elapsed = time.perf_counter() - began
    return elapsed, result.decision_bars, round_trips(result.fills)[0]


def run_event_floor(cache_dir: Path, end) -> float:
    """Seconds of the event path with its two workers taken out: the ticks, the candles, the venue and
    the equity marks, no decision and so no order. What is left of a run is what the live workers cost."""
    from services.backtest.inprocess import InProcessBacktest
    from services.strategies.registry import load_strategy

    backtest = InProcessBacktest(load_strategy("ma_cross", EXITS_OFF), _settings("current"))
    backtest.workers = []
    began = time.perf_counter()
    asyncio.run(backtest.run(_cached_ticks(cache_dir, end)))
    return time.perf_counter() - began


def run_quantmesh_mesh(cache_dir: Path, end):
    """Returns (start-up seconds, run seconds, decision bars, trades, CPU seconds of the run by process)."""
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
                cpu_before = cpu_by_process()
                result = await backtest.run(_cached_ticks(cache_dir, end))
                cpu = {name: seconds - cpu_before.get(name, 0.0) for name, seconds in cpu_by_process().items()}
                finished = time.perf_counter()
        if result.disagreements:
            raise SystemExit("the position plane disagrees with the fills: " + "; ".join(result.disagreements))
        return started - began, finished - started, result.decision_bars, round_trips(result.fills)[0], cpu

    return asyncio.run(go())


def cpu_by_process() -> dict[str, float]:
    """CPU seconds so far (user + system) of this process (the driver, with both workers), of each plane
    process under it by module, and of every PostgreSQL process on the machine together."""
    import psutil
    from order_submit import postgres_cpu, cpu_seconds

    me = psutil.Process()
    cpu = {"driver and workers": cpu_seconds(me.pid), "PostgreSQL": postgres_cpu()}
    for process in me.children(recursive=True):
        try:
            line = process.cmdline()
            if "-m" in line[:-1]:
                module = line[line.index("-m") + 1].removeprefix("services.")
                cpu[module] = cpu.get(module, 0.0) + cpu_seconds(process.pid)
        except psutil.Error:
            continue
    return cpu


def run_sweep(cache_dir: Path, jobs: int) -> tuple[float, int]:
    """quantmesh's Sweep over the whole month on the 100-set grid; (seconds, runs), pool start-up included."""
    from services.backtest.cache import TickCache
    from services.backtest.data import MarketData
    from services.backtest.fast import FastSettings
    from services.backtest.optimize import Sweep, SweepSpec, parse_range, walk_forward, windows

    began = time.perf_counter()
    market = MarketData(SPEC, "USD_JPY", cache=TickCache(cache_dir))
    columns = asyncio.run(market.columns())
    spec = SweepSpec(slug="ma_cross", fixed=EXITS_OFF, timeframe=None, settings=FastSettings(fill_at="current"),
                     cache_folder=cache_dir, cache_key=market.cache_key)
    ranges = [parse_range(f"fast_period={FAST.start}:{FAST.stop - 1}:{FAST.step}"),
              parse_range(f"slow_period={SLOW.start}:{SLOW.stop - 1}:{SLOW.step}")]
    spans = windows(int(columns.time_us[0]), int(columns.time_us[-1]), 1, 1.0)
    result = walk_forward(Sweep(spec, jobs=jobs, chunk=max(1, 100 // (4 * jobs))), spans, ranges)
    return time.perf_counter() - began, len(result.runs)


FAST, SLOW = range(5, 55, 5), range(55, 155, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bars", type=int, default=None, help="only the first N bars (default: the whole month)")
    parser.add_argument("--mesh-bars", type=int, default=2_000,
                        help="bars for the --mesh transport and its in-process twin (default 2,000; 0 = all)")
    parser.add_argument("--no-mesh", action="store_true", help="skip the --mesh measurement")
    parser.add_argument("--no-sweep", action="store_true", help="skip the 100-set sweep")
    parser.add_argument("--mesh-only", action="store_true",
                        help="only the --mesh measurement and its in-process twin (no other engine, no sweep)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for the sweep")
    args = parser.parse_args()
    if args.mesh_only:
        if args.no_mesh:
            parser.error("--mesh-only and --no-mesh leave nothing to run; choose one")
        with tempfile.TemporaryDirectory(prefix="qm-bench-cache-") as folder:
            asyncio.run(_fill_cache(Path(folder)))
            compare_mesh(Path(folder), args.mesh_bars, None)
        return
    frame = mid_frame(args.bars)
    end = _end_of(args.bars)
    with tempfile.TemporaryDirectory(prefix="qm-bench-cache-") as folder:
        cache_dir = Path(folder)
        began = time.perf_counter()
        asyncio.run(_fill_cache(cache_dir))
        parse = time.perf_counter() - began
        fast_times, f_bars, f_trades = run_fast(cache_dir, end)
        q_time, q_bars, q_trades = run_quantmesh(cache_dir, end)
        floor_time = run_event_floor(cache_dir, end)
        b_time, b_trades = baselines.backtesting_py(frame)
        t_time, t_trades = baselines.backtrader(frame)
        v_times, v_trades, v_first = baselines.vectorbt(frame, repeats=len(fast_times))
        v_time = min(v_times)
        try:
            n_time, n_trades = baselines.nautilus(frame)
        except ImportError:
            n_time = n_trades = None
        f_time = min(fast_times)
        rows = [("quantmesh fast path", f_bars, f_time, f_trades), ("quantmesh event path", q_bars, q_time, len(q_trades)),
                ("backtesting.py", len(frame), b_time, b_trades), ("backtrader", len(frame), t_time, t_trades),
                ("vectorbt", len(frame), v_time, v_trades)]
        if n_time is not None:
            rows.append(("NautilusTrader", len(frame), n_time, n_trades))
        print(f"USD/JPY M1, 2013-02 ({len(frame):,} bars), SMA cross 10/30, one run\n")
        print(f"  {'engine':<22} {'bars':>8} {'seconds':>9} {'bars/s':>12} {'trades':>7}")
        for name, bars, seconds, trades in rows:
            print(f"  {name:<22} {bars:>8,} {seconds:>9.4f} {bars / seconds:>12,.0f} {trades:>7}")
        rate = {name: bars / seconds for name, bars, seconds, _ in rows}
        print(f"\n  fast path: best of {len(fast_times)} (median {statistics.median(fast_times):.4f} s, first "
              f"{fast_times[0]:.4f} s), each opening the data spec and reading the tick cache (the parsed ticks only); "
              f"parsing the CSVs into the cache once took {parse:.2f} s")
        print(f"  vectorbt: best of {len(v_times)} (median {statistics.median(v_times):.4f} s) after its first call, "
              f"which took {v_first:.1f} s (numba compiling)")
        print(f"  fast path / vectorbt by medians: {statistics.median(v_times) / statistics.median(fast_times):.2f}x")
        fast, event = rate["quantmesh fast path"], rate["quantmesh event path"]
        print(f"  fast path / backtesting.py: {fast / rate['backtesting.py']:.1f}x   fast path / vectorbt: "
              f"{fast / rate['vectorbt']:.2f}x   fast path / backtrader: {fast / rate['backtrader']:.0f}x")
        print(f"  event path / backtesting.py: {event / rate['backtesting.py']:.3f}x   event path / backtrader: "
              f"{event / rate['backtrader']:.2f}x" + (f"   event path / NautilusTrader: "
                                                      f"{event / rate['NautilusTrader']:.2f}x" if n_time else
                                                      "   (NautilusTrader is not installed)"))
        # Where the event path's time goes: the loop alone, and what is left for the two live workers.
        per_bar, floor_per_bar = q_time / q_bars * 1e6, floor_time / q_bars * 1e6
        print(f"  event path without its two workers (ticks, candles, venue, equity marks): "
              f"{q_bars / floor_time:,.0f} bars/s; the live EXIT and ENTRY workers and their orders take "
              f"{per_bar - floor_per_bar:.1f} of its {per_bar:.1f} us per bar")
        if n_time:
            target = 1e6 / (2 * rate["NautilusTrader"])
            print(f"  2x NautilusTrader is {target:.1f} us per bar: {target - floor_per_bar:.1f} us left for both "
                  f"workers' decisions and orders after the loop's {floor_per_bar:.1f}")
        if not args.no_sweep:
            s_time, s_runs = run_sweep(cache_dir, args.jobs)
            o_time, o_runs = baselines.backtesting_py_optimize(frame, FAST, SLOW)
            print(f"\n100-set sweep (fast_period {FAST.start}..{FAST.stop - FAST.step} step {FAST.step} x slow_period "
                  f"{SLOW.start}..{SLOW.stop - SLOW.step} step {SLOW.step}) over the month:\n")
            from services.backtest.optimize import POOL_FROM_RUNS

            where = f"{args.jobs} processes" if args.jobs > 1 and s_runs >= POOL_FROM_RUNS else "in one process"
            print(f"  quantmesh Sweep ({where:<13}) {s_runs:>4} runs  {s_time:>8.2f} s")
            print(f"  backtesting.py optimize         {o_runs:>4} runs  {o_time:>8.2f} s  (its own process pool)")
            print(f"  quantmesh / backtesting.py: {o_time / s_time:.1f}x faster")
        if args.no_mesh:
            return
        compare_mesh(cache_dir, args.mesh_bars, len(frame) / b_time)


def compare_mesh(cache_dir: Path, mesh_bars: int, backtesting_py_rate: float | None) -> None:
    """--mesh on the first `mesh_bars` bars next to its in-process twin; exits 1 if their trades differ."""
    mesh_end = _end_of(mesh_bars or None)
    n_time, n_bars, n_trades = run_quantmesh(cache_dir, mesh_end, fill_at="next")
    startup, m_time, m_bars, m_trades, cpu = run_quantmesh_mesh(cache_dir, mesh_end)
    print(f"\n--mesh against in-process, live-like fills (next quote), first {m_bars:,} bars:\n")
    print(f"  {'transport':<22} {'bars':>8} {'seconds':>9} {'bars/s':>10} {'trades':>7}")
    print(f"  {'in-process':<22} {n_bars:>8,} {n_time:>9.2f} {n_bars / n_time:>10,.0f} {len(n_trades):>7}")
    print(f"  {'mesh (gRPC, 4 procs)':<22} {m_bars:>8,} {m_time:>9.2f} {m_bars / m_time:>10,.1f} {len(m_trades):>7}")
    print(f"\n  mesh / in-process: {(m_bars / m_time) / (n_bars / n_time):.4f}x" +
          (f"   mesh / backtesting.py: {(m_bars / m_time) / backtesting_py_rate:.4f}x" if backtesting_py_rate else ""))
    print(f"  mesh start-up (PostgreSQL + 4 planes healthy): {startup:.1f} s, not in the figures above")
    # The mesh is CPU-bound: what each process spends per bar, and the rate the machine's cores allow.
    per_bar = {name: seconds / m_bars * 1e3 for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])}
    total, cores = sum(per_bar.values()), os.cpu_count() or 1
    print("  CPU per bar: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in per_bar.items())
          + f"; {total:.2f} ms in all, so {cores} cores allow at most {cores * 1e3 / total:,.0f} bars/s")
    same = n_trades == m_trades
    print(f"  trades identical to in-process: {'yes' if same else 'NO'} ({len(m_trades)} trades)")
    if not same:
        raise SystemExit(1)


async def _fill_cache(cache_dir: Path) -> None:
    from services.backtest.cache import TickCache
    from services.backtest.data import MarketData

    await MarketData(SPEC, "USD_JPY", cache=TickCache(cache_dir)).columns()


if __name__ == "__main__":
    main()
