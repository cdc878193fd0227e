"""`quantmesh optimize`: a parameter sweep, with walk-forward windows, over the fast backtest.

    quantmesh optimize --data BID.csv,ASK.csv --strategy ma_cross \
        --param fast_period=5:30:5 --param slow_period=20:80:10 --windows 4 --jobs 2

Writes <out>/runs.csv (every run), <out>/windows.csv (the set chosen per window and how it did
out of sample), <out>/oos_equity.png (the out-of-sample runs chained) and, for two swept
params, <out>/heatmap.png (the in-sample objective over the grid). The rules of the sweep are
in services/backtest/optimize.py; paper-venue settings come from QUANTMESH_PAPER_*, parsed by
the order plane's own config, as for `quantmesh backtest`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from services.backtest.cache import DEFAULT_CACHE_DIR, TickCache
from services.backtest.data import DataError, MarketData
from services.backtest.fast import FastSettings
from services.backtest.optimize import (OBJECTIVES, OptimizeError, Sweep, SweepSpec, grid, parse_range, walk_forward,
                                        windows)
from services.backtest.optimize_report import out_of_sample_curve, plot_curve, plot_heatmap, write_runs, write_windows
from services.cli.backtest import _time, venue_settings
from services.common.config import ConfigError, Env
from services.strategies.params import StrategyConfigError
from services.strategies.registry import catalogue


def add_optimize_parser(sub) -> None:
    parser = sub.add_parser("optimize", help="sweep a strategy's params (grid or optuna), with walk-forward windows",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="FILE", help="as for quantmesh backtest")
    parser.add_argument("--strategy", required=True, help="strategy slug")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=START:STOP:STEP",
                        help="a swept param: START:STOP:STEP (STOP included) or a,b,c; repeat for more")
    parser.add_argument("--params", nargs="*", default=[], metavar="NAME=VALUE", help="fixed strategy params")
    parser.add_argument("--sampler", choices=("grid", "optuna"), default="grid")
    parser.add_argument("--trials", type=int, default=100, help="sets per window with --sampler optuna")
    parser.add_argument("--seed", type=int, default=0, help="the optuna sampler's seed (reproducible runs)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: the cores)")
    parser.add_argument("--windows", type=int, default=1, help="walk-forward windows (default 1: a plain sweep)")
    parser.add_argument("--in-sample", type=float, default=None,
                        help="share of each window that fits (default 0.75 with --windows > 1, else 1.0)")
    parser.add_argument("--objective", choices=OBJECTIVES, default="net_pnl")
    parser.add_argument("--from", dest="start", metavar="TIME")
    parser.add_argument("--to", dest="end", metavar="TIME")
    parser.add_argument("--timeframe", help="decide on this timeframe instead of the strategy's own")
    parser.add_argument("--cash", default="10000000")
    parser.add_argument("--fill-at", choices=("next", "current"), default="next")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR), help="the tick cache folder")
    parser.add_argument("--out", default="out/optimize")
    parser.add_argument("--no-progress", action="store_true")


async def run_optimize(args) -> int:
    try:
        if args.strategy not in catalogue():
            raise StrategyConfigError(f"unknown strategy '{args.strategy}'; known strategies: "
                                      f"{', '.join(sorted(catalogue()))}")
        ranges = [parse_range(text) for text in args.param]
        if not ranges:
            raise OptimizeError("name at least one --param to sweep, e.g. --param fast_period=5:30:5")
        fixed = dict(item.split("=", 1) for item in args.params if "=" in item)
        paper, _ = venue_settings(Env())
        settings = FastSettings(starting_cash=Decimal(args.cash), fill_at=args.fill_at, paper=paper)
        cls = catalogue()[args.strategy]
        instrument = fixed.get("instrument", cls.Params().instrument)
        cache = TickCache(Path(args.cache_dir))
        data = MarketData(args.data, instrument, cache=cache)
        columns = await data.columns()  # parsed once here; every run reads the cache
        if not len(columns):
            raise DataError(f"{args.data} holds no tick")
        start, end = _time(args.start, "--from"), _time(args.end, "--to")
        first = columns.time_us[0] if start is None else max(int(columns.time_us[0]), _us(start))
        last = columns.time_us[-1] if end is None else min(int(columns.time_us[-1]), _us(end) - 1)
        in_sample = args.in_sample if args.in_sample is not None else (0.75 if args.windows > 1 else 1.0)
        spans = windows(int(first), int(last), args.windows, in_sample)
        spec = SweepSpec(slug=args.strategy, fixed=fixed, timeframe=args.timeframe, settings=settings,
                         cache_folder=cache.folder, cache_key=data.cache_key, objective=args.objective)
        spec.strategy({r.name: r.values[0] for r in ranges})  # a bad fixed param stops here, with its sentence
    except (StrategyConfigError, ConfigError, DataError, OptimizeError) as exc:
        print(f"quantmesh optimize: {exc}", file=sys.stderr)
        return 2
    per_window = len(grid(ranges)) if args.sampler == "grid" else args.trials
    total = args.windows * (per_window + (1 if in_sample < 1 else 0))
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(total=total, unit=" runs", desc=f"{args.strategy} {args.sampler}", file=sys.stderr)
    sweep = Sweep(spec, jobs=args.jobs, progress=(lambda n: progress.update(n)) if progress else (lambda n: None))
    began = time.perf_counter()
    try:
        result = walk_forward(sweep, spans, ranges, sampler=args.sampler, trials=args.trials, seed=args.seed)
    finally:
        if progress is not None:
            progress.close()
    elapsed = time.perf_counter() - began
    out = Path(args.out)
    names = [r.name for r in ranges]
    write_runs(result, names, out / "runs.csv")
    write_windows(result, names, out / "windows.csv")
    ran = [r for r in result.runs if not r.refused]
    where = f"on {sweep.jobs} processes" if sweep.parallel(total) else "in this process"
    print(f"{args.strategy}: {len(result.runs):,} runs ({len(result.runs) - len(ran)} refused) in {elapsed:.2f} s "
          f"{where}, objective {args.objective}")
    for window, best, tested in result.chosen:
        chosen = ", ".join(f"{k}={v}" for k, v in best.params.items()) if best else "nothing ran"
        line = f"  window {window.number}: {chosen}; in sample net {best.net_pnl:,.2f}" if best else f"  window {window.number}: {chosen}"
        if tested is not None:
            line += f"; out of sample net {tested.net_pnl:,.2f} over {tested.trades} trades"
        print(line)
    times, equity = out_of_sample_curve(result, float(settings.starting_cash))
    if len(times):
        plot_curve(times, equity, out / "oos_equity.png", title=f"{args.strategy}: out of sample, walk-forward")
        print(f"  out-of-sample equity: {out / 'oos_equity.png'}")
    if len(ranges) == 2:
        plot_heatmap(result.runs, ranges[0], ranges[1], args.objective, out / "heatmap.png",
                     title=f"{args.strategy}: in-sample {args.objective}, mean over {args.windows} window(s)")
        print(f"  heatmap: {out / 'heatmap.png'}")
    print(f"  runs: {out / 'runs.csv'}\n  windows: {out / 'windows.csv'}")
    return 0


def _us(moment) -> int:
    from services.backtest.cache import micros

    return micros(moment)
