"""Parameter sweeps and walk-forward: many backtests of one strategy, in parallel, reproducibly.

    quantmesh optimize --data BID.csv,ASK.csv --strategy ma_cross \
        --param fast_period=5:30:5 --param slow_period=20:80:10 --windows 4

- A `--param NAME=START:STOP:STEP` range includes STOP when the steps reach it; `NAME=a,b,c`
  lists values; the grid is every combination. A combination the strategy refuses
  (fast_period >= slow_period) is reported as refused, not run.
- `--sampler optuna` asks optuna's TPE sampler (seeded) for `--trials` sets from the same
  ranges instead of the whole grid; trials are asked and told in batches of `--jobs`, so the
  same seed and jobs give the same trials.
- Runs are the fast path (services/backtest/fast.py) when the strategy has a vector rule,
  else the event path. They go to `--jobs` processes in chunks; each chunk reads the tick
  cache once, so the data is parsed once for the whole sweep.
- Walk-forward: the data's span is cut into `--windows` equal windows; in each, the first
  `in_sample` share fits (every set is run, the best by the objective is chosen) and the rest
  tests the chosen set out of sample. The out-of-sample runs, one after the other, are the
  walk-forward result. With one window and in_sample 1.0 it is a plain sweep.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from services.backtest.cache import CachedTicks, TickCache
from services.backtest.fast import FastBacktest, FastSettings, NotVectorizable
from services.backtest.trades import round_trips
from services.strategies.params import StrategyConfigError, parse_params
from services.strategies.registry import catalogue
from services.strategies.sdk import on_timeframe

OBJECTIVES = ("net_pnl", "sharpe", "return_pct")
#: Below this many runs a sweep runs in this process (see Sweep.pool).
POOL_FROM_RUNS = 400
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class OptimizeError(ValueError):
    """A sweep cannot start; the message says what to change."""


@dataclass(frozen=True, slots=True)
class ParamRange:
    name: str
    values: tuple[str, ...]


def parse_range(text: str) -> ParamRange:
    """"fast_period=5:30:5" (STOP included when reached), "deviations=1.5,2,2.5" or "period=20"."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise OptimizeError(f"--param {text!r} is not NAME=START:STOP:STEP or NAME=a,b,c")
    name, spec = name.strip(), spec.strip()
    if ":" not in spec:
        return ParamRange(name, tuple(v.strip() for v in spec.split(",") if v.strip()))
    try:
        start, stop, step = (Decimal(part) for part in spec.split(":"))
    except (ValueError, InvalidOperation):
        raise OptimizeError(f"--param {text!r}: START:STOP:STEP must be three numbers, e.g. 5:30:5") from None
    if step <= 0 or stop < start:
        raise OptimizeError(f"--param {text!r}: STEP must be positive and STOP not below START")
    count = int((stop - start) / step) + 1
    if count > 10_000:
        raise OptimizeError(f"--param {text!r} has {count:,} values; at most 10,000")
    return ParamRange(name, tuple(str(start + i * step) for i in range(count)))


def grid(ranges: Sequence[ParamRange]) -> list[dict[str, str]]:
    return [dict(zip((r.name for r in ranges), combo)) for combo in itertools.product(*(r.values for r in ranges))]


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """What every run shares: the strategy, fixed params, settings and where the ticks are cached."""

    slug: str
    fixed: dict[str, str]
    timeframe: str | None
    settings: FastSettings
    cache_folder: Path
    cache_key: str
    objective: str = "net_pnl"

    def strategy(self, params: dict[str, str]):
        cls = catalogue()[self.slug]
        if self.timeframe:
            cls = on_timeframe(cls, self.timeframe)
        return cls(parse_params(cls.Params, {**self.fixed, **params}, owner=self.slug))


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One backtest of a sweep: the window it ran in, its params and its figures."""

    window: int
    sample: str  # "in" | "out"
    params: dict[str, str]
    trades: int = 0
    net_pnl: Decimal = Decimal(0)
    return_pct: float = 0.0
    max_drawdown_pct: float = 0.0
    sharpe: float = 0.0
    refused: str = ""  # why the strategy refused these params (then nothing ran)
    curve_time_us: np.ndarray | None = field(default=None, compare=False)
    curve_equity: np.ndarray | None = field(default=None, compare=False)

    def score(self, objective: str) -> float:
        return -math.inf if self.refused else float(getattr(self, objective))


@dataclass(frozen=True, slots=True)
class Task:
    window: int
    sample: str
    start_us: int
    end_us: int
    params: dict[str, str]
    keep_curve: bool = False


def figures(trades: tuple[int, Decimal], time_us: np.ndarray, equity: np.ndarray, starting_cash: Decimal) -> dict:
    """Trades and net PnL (exact: closed trades, their count and sum), return, max drawdown and daily Sharpe."""
    count, net = trades
    start = float(starting_cash)
    final = float(equity[-1]) if len(equity) else start
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    drawdown = float(np.max((peak - equity) / peak)) * 100 if len(equity) else 0.0
    return {"trades": count, "net_pnl": net, "return_pct": (final - start) / start * 100,
            "max_drawdown_pct": drawdown, "sharpe": _daily_sharpe(time_us, equity)}


def _daily_sharpe(time_us: np.ndarray, equity: np.ndarray) -> float:
    """The report's rule (services/backtest/report.py daily_sharpe) over arrays."""
    if not len(equity):
        return 0.0
    days = time_us // 86_400_000_000
    last_of_day = np.flatnonzero(np.concatenate((days[1:] != days[:-1], [True])))
    closes = equity[last_of_day]
    returns = closes[1:] / closes[:-1] - 1
    if len(returns) < 2:
        return 0.0
    spread = float(np.std(returns, ddof=1))
    return float(np.mean(returns)) / spread * math.sqrt(252) if spread > 0 else 0.0


def run_chunk(spec: SweepSpec, tasks: Sequence[Task]) -> list[Run]:
    """Runs tasks in this process (a pool worker): the cache is read once for the chunk."""
    ticks = TickCache(spec.cache_folder).load(spec.cache_key)
    if ticks is None:
        raise OptimizeError(f"the tick cache {spec.cache_key} is missing under {spec.cache_folder}")
    candles: dict = {}
    return [run_one(spec, ticks, task, candles) for task in tasks]


def run_one(spec: SweepSpec, ticks: CachedTicks, task: Task, candles: dict | None = None) -> Run:
    try:
        strategy = spec.strategy(task.params)
    except StrategyConfigError as exc:
        return Run(window=task.window, sample=task.sample, params=task.params, refused=str(exc))
    start, end = _at(task.start_us), _at(task.end_us)
    try:
        result = FastBacktest(strategy, spec.settings).run(ticks, start, end, candles=candles)
        trades, time_us, equity = result.closed_trades(), result.curve_time_us, result.curve_equity
    except NotVectorizable:
        fills, time_us, equity = _event_path(strategy, spec.settings, ticks, start, end)
        closed, _ = round_trips(fills)
        trades = (len(closed), sum((t.net_pnl for t in closed), Decimal(0)))
    keep = task.keep_curve
    return Run(window=task.window, sample=task.sample, params=task.params,
               curve_time_us=time_us if keep else None, curve_equity=equity if keep else None,
               **figures(trades, time_us, equity, spec.settings.starting_cash))


def _event_path(strategy, settings: FastSettings, ticks: CachedTicks, start, end):
    """A strategy without a vector rule runs on the live code (slow, but the same rules)."""
    from services.backtest.inprocess import BacktestSettings, InProcessBacktest

    async def go():
        async def source():
            for tick in ticks.ticks(start, end):
                yield tick

        backtest = InProcessBacktest(strategy, BacktestSettings(starting_cash=settings.starting_cash,
                                                                fill_at=settings.fill_at, paper=settings.paper))
        return await backtest.run(source())

    result = asyncio.run(go())
    time_us = np.array([int((p.time - _EPOCH) / timedelta(microseconds=1)) for p in result.curve], dtype=np.int64)
    equity = np.array([float(p.equity) for p in result.curve])
    return result.fills, time_us, equity


@dataclass(frozen=True, slots=True)
class Window:
    number: int
    in_start_us: int
    in_end_us: int  # = the out-of-sample start
    out_end_us: int


def windows(first_us: int, last_us: int, count: int, in_sample: float) -> list[Window]:
    if count < 1 or not 0 < in_sample <= 1:
        raise OptimizeError("--windows must be at least 1 and --in-sample in (0, 1]")
    if count > 1 and in_sample == 1:
        raise OptimizeError("walk-forward needs an out-of-sample part: --in-sample below 1")
    span = (last_us + 1 - first_us) / count
    edges = [first_us] + [_minute(first_us + round(i * span)) for i in range(1, count)] + [last_us + 1]
    return [Window(i + 1, begin, max(begin, _minute(begin + round((end - begin) * in_sample))) if in_sample < 1 else end,
                   end) for i, (begin, end) in enumerate(zip(edges, edges[1:]))]


def _minute(time_us: int) -> int:
    """Window edges fall on whole minutes: a boundary inside a candle would split it between windows."""
    return time_us - time_us % 60_000_000


class Sweep:
    """Fits each window in sample, tests the chosen set out of sample; `progress(n)` after each chunk."""

    def __init__(self, spec: SweepSpec, *, jobs: int = 1, chunk: int = 8,
                 progress: Callable[[int], None] = lambda n: None) -> None:
        self.spec = spec
        self.jobs = max(1, jobs)
        self.chunk = max(1, chunk)
        self.progress = progress

    def _map(self, pool, tasks: Sequence[Task]) -> list[Run]:
        chunks = [tasks[i:i + self.chunk] for i in range(0, len(tasks), self.chunk)]
        if pool is None:
            results = []
            for piece in chunks:
                results.append(run_chunk(self.spec, piece))
                self.progress(len(piece))
            return [run for piece in results for run in piece]
        futures = [pool.submit(run_chunk, self.spec, piece) for piece in chunks]
        out = []
        for future, piece in zip(futures, chunks):
            out.extend(future.result())
            self.progress(len(piece))
        return out

    def fit(self, pool, window: Window, sets: Iterable[dict[str, str]]) -> list[Run]:
        tasks = [Task(window.number, "in", window.in_start_us, window.in_end_us, params) for params in sets]
        return self._map(pool, tasks)

    def test(self, pool, window: Window, params: dict[str, str]) -> Run:
        return self._map(pool, [Task(window.number, "out", window.in_end_us, window.out_end_us, params, True)])[0]

    def best(self, runs: Sequence[Run]) -> Run | None:
        ran = [r for r in runs if not r.refused]
        # Ties go to the first set in grid order: the same sweep always chooses the same set.
        return max(ran, key=lambda r: r.score(self.spec.objective)) if ran else None

    def parallel(self, runs: int) -> bool:
        """Whether `runs` runs go to processes: a spawned process takes a second or two to import
        numpy, polars and TA-Lib, longer than a few hundred fast runs take here."""
        return self.jobs >= 2 and runs >= POOL_FROM_RUNS

    def pool(self, runs: int):
        """Processes for `runs` runs, or None to run them in this process."""
        if not self.parallel(runs):
            return None
        # Spawned, not forked: polars' threads in this process would leave a forked child holding their locks.
        return ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"))


def optuna_sets(ranges: Sequence[ParamRange], trials: int, seed: int, evaluate: Callable[[list[dict]], list[float]],
                batch: int) -> None:
    """Asks optuna's TPE sampler (seeded) for `trials` sets, `batch` at a time; `evaluate` scores a batch."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    done = 0
    while done < trials:
        asked = [study.ask() for _ in range(min(batch, trials - done))]
        sets = [{r.name: trial.suggest_categorical(r.name, list(r.values)) for r in ranges} for trial in asked]
        for trial, score in zip(asked, evaluate(sets)):
            study.tell(trial, score if math.isfinite(score) else -1e300)
        done += len(asked)


def _at(time_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(time_us))


@dataclass(slots=True)
class WalkForward:
    runs: list[Run]  # every run, in sample and out of sample
    chosen: list[tuple[Window, Run | None, Run | None]]  # (window, best in sample, its out-of-sample run)


def walk_forward(sweep: Sweep, spans: Sequence[Window], ranges: Sequence[ParamRange], *, sampler: str = "grid",
                 trials: int = 100, seed: int = 0) -> WalkForward:
    result = WalkForward(runs=[], chosen=[])
    runs = len(spans) * ((len(grid(ranges)) if sampler == "grid" else trials) + 1)
    with (sweep.pool(runs) or _NoPool()) as pool:
        pool = pool if isinstance(pool, ProcessPoolExecutor) else None
        for window in spans:
            if sampler == "grid":
                fitted = sweep.fit(pool, window, grid(ranges))
            else:
                fitted = []

                def evaluate(sets: list[dict]) -> list[float]:
                    runs = sweep.fit(pool, window, sets)
                    fitted.extend(runs)
                    return [r.score(sweep.spec.objective) for r in runs]

                optuna_sets(ranges, trials, seed + window.number, evaluate, batch=sweep.jobs * sweep.chunk)
            result.runs.extend(fitted)
            best = sweep.best(fitted)
            tested = None
            if best is not None and window.out_end_us > window.in_end_us:
                tested = sweep.test(pool, window, best.params)
                result.runs.append(tested)
            result.chosen.append((window, best, tested))
    return result


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None
