"""`quantmesh backtest`: the same strategy, order and position code under a simulated clock.

    quantmesh backtest --data BID.csv,ASK.csv --strategy ma_cross --params fast_period=5 slow_period=20
    quantmesh backtest --mesh --data BID.csv,ASK.csv --strategy ma_cross   # through the real gRPC mesh
    quantmesh backtest --fast --data BID.csv,ASK.csv --strategy ma_cross   # whole arrays, for research

Two transports: in-process (default: the live worker, order engine and ledger in one
process) and --mesh, which starts the control, market_data (fed by push), order (paper
venue) and position planes as processes on a fresh database and steps them in lock step; on
the same data both give the same trades. --fast computes the same trades over whole arrays
(services/backtest/fast.py) for strategies with a vector rule, and says so and runs the
in-process path for the others. The data is parsed once into a cache (--cache-dir).
Prints the report, writes <out>/trades.csv and <out>/equity.png (a run that cannot use the
data, or whose --from/--to window holds no tick, exits 2 and leaves them as they were; rows
it had to skip are summarized on stderr). Risk limits are the
order plane's (QUANTMESH_RISK_* environment variables, the same as live); paper-venue
settings come from QUANTMESH_PAPER_* likewise, both parsed by the order plane's own config.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.backtest.cache import DEFAULT_CACHE_DIR, TickCache
from services.backtest.charts import Chart, plot_equity, prices_of
from services.backtest.data import DataError, MarketData
from services.backtest.fast import FastBacktest, FastSettings, NotVectorizable
from services.backtest.inprocess import BacktestResult, BacktestSettings, InProcessBacktest
from services.backtest.mesh import MeshBacktest, MeshBacktestError
from services.backtest.policy import replay_for
from services.backtest.policy import report as report_policy
from services.backtest.html_report import write_html_report
from services.backtest.progress import expected_ticks
from services.backtest.report import EquityPoint, format_summary, summarize, summary_rows, write_trades_csv
from services.backtest.trades import round_trips
from services.common.config import ConfigError, Env
from services.common.wire import decimal_text
from services.market_data.feeds.files import parse_timezone
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.strategies.params import StrategyConfigError, parse_params
from services.strategies.registry import catalogue
from services.strategies.sdk import on_timeframe


def add_backtest_parser(sub) -> None:
    parser = sub.add_parser("backtest", help="backtest a strategy on a data file with the live code",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="FILE",
                        help="tick file (CSV or Parquet): quotes (timestamp,bid,ask[,volume]), trade prints "
                             "(timestamp,price,quantity[,side|buyer_maker]), HistData ticks (no header) or a Binance "
                             "trade dump; BID.csv,ASK.csv one-minute bar files; or one OHLC bar file "
                             "(Open/High/Low/Close columns)")
    parser.add_argument("--data-timezone", metavar="TZ",
                        help="timezone of tick-file times written without an offset: an offset (-05:00, UTC+09:00), UTC "
                             "or a zone name (America/New_York); default UTC, and UTC-05:00 for HistData files "
                             "(New York standard time all year, as HistData writes them)")
    parser.add_argument("--strategy", required=True, help="strategy slug (python -m services.strategies --list)")
    parser.add_argument("--params", nargs="*", default=[], metavar="NAME=VALUE", help="strategy params")
    parser.add_argument("--from", dest="start", metavar="TIME", help="first tick time, ISO 8601 (UTC if no offset)")
    parser.add_argument("--to", dest="end", metavar="TIME", help="stop before this time, ISO 8601")
    parser.add_argument("--timeframe", help="decide on this timeframe instead of the strategy's own (e.g. H1)")
    parser.add_argument("--instrument", help="instrument name for the data (default: the strategy's param)")
    parser.add_argument("--cash", default="10000000", help="starting cash in the quote currency (default 10,000,000)")
    parser.add_argument("--fill-at", choices=("next", "current"), default="next",
                        help="market orders fill at the next quote after the decision (live-like, default) or at "
                             "the quote that closed the decision candle (the next bar's open, like backtesting.py)")
    parser.add_argument("--spread", default="0",
                        help="spread put around OHLC bar prices and trade prints (price units); quotes keep their own")
    parser.add_argument("--out", default="out/backtest", help="folder for trades.csv and equity.png")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--html", action="store_true",
                        help="also write <out>/report.html: the charts, interactive (zoom, hover, trades), "
                             "self-contained (opens offline)")
    parser.add_argument("--fast", action="store_true",
                        help="research mode: the same trades over whole arrays (strategies with a vector rule; "
                             "no pre-trade risk limits); others run in-process and say so")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR),
                        help="where parsed data is cached (keyed by the files' hash)")
    parser.add_argument("--no-cache", action="store_true", help="read the data file itself, store nothing")
    parser.add_argument("--policy", action="store_true",
                        help="replay the analysis plane's allocation policy walk-forward (QUANTMESH_ANALYSIS_*, "
                             "docs/analysis.md): sizes from the trades closed so far; writes allocations.csv")
    parser.add_argument("--mesh", action="store_true",
                        help="run through the real gRPC mesh (every plane its own process, lock-stepped; slower) "
                             "instead of in one process; the trades are the same")


def _timezone(text: str | None) -> tzinfo | None:
    if not text:
        return None
    try:
        return parse_timezone(text)
    except ValueError as exc:
        raise DataError(f"--data-timezone {exc}") from None


def _time(text: str | None, flag: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DataError(f"{flag} {text!r} is not an ISO 8601 time, e.g. 2013-02-04 or 2013-02-04T09:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def venue_settings(env: Env) -> tuple[PaperSettings, RiskLimits]:
    """The paper venue's settings and the risk limits, by the very parsers the order plane uses:
    live, in-process and --mesh (whose order plane reads the same environment) agree. Only these
    two: a backtest must not fail on settings it does not use (a real venue's credentials)."""
    return PaperSettings.from_env(env), RiskLimits.from_env(env)


def build(args):
    known = catalogue()
    cls = known.get(args.strategy)
    if cls is None:
        raise StrategyConfigError(f"unknown strategy '{args.strategy}'; known strategies: {', '.join(sorted(known))}")
    if args.timeframe:
        cls = on_timeframe(cls, args.timeframe)
    raw = {}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep:
            raise StrategyConfigError(f"--params {item!r} is not NAME=VALUE")
        raw[name] = value
    if args.instrument:
        raw["instrument"] = args.instrument
    params = parse_params(cls.Params, raw, owner=args.strategy)
    strategy = cls(params)
    try:
        cash, spread = Decimal(args.cash), Decimal(args.spread)
    except InvalidOperation:
        raise DataError("--cash and --spread must be decimal numbers") from None
    paper, limits = venue_settings(Env())
    settings = BacktestSettings(starting_cash=cash, fill_at=args.fill_at, paper=paper, limits=limits)
    return strategy, settings, spread, lambda: cls(params)


async def run_backtest(args) -> int:
    try:
        strategy, settings, spread, make_strategy = build(args)
        start, end = _time(args.start, "--from"), _time(args.end, "--to")
        if start is not None and end is not None and start >= end:
            raise DataError(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
        if args.fast and args.mesh:
            raise DataError("--fast and --mesh are two ways to run; choose one")
        if args.policy and (args.fast or args.mesh):
            raise DataError("--policy replays the allocation policy in the event path only; leave out --fast and --mesh")
        policy = replay_for(strategy, Env()) if args.policy else None
        cache = None if args.no_cache else TickCache(Path(args.cache_dir))
        data = MarketData(args.data, strategy.params.instrument, spread=spread, timezone=_timezone(args.data_timezone),
                          cache=cache)
    except (StrategyConfigError, ConfigError, DataError) as exc:
        print(f"quantmesh backtest: {exc}", file=sys.stderr)
        return 2
    note = f"; {data.timezone_note} (--data-timezone to change)" if data.timezone_note else ""
    print(f"data: {data.description}{note}", file=sys.stderr)
    if args.mesh and args.fill_at != "next":
        print("quantmesh backtest: --mesh fills as the live paper venue does (--fill-at next); "
              "--fill-at current is for comparisons with bar backtesters, in-process only", file=sys.stderr)
        return 2
    fast = None
    if args.fast:
        try:
            fast = FastBacktest(strategy, FastSettings(starting_cash=settings.starting_cash, fill_at=settings.fill_at,
                                                       paper=settings.paper))
        except NotVectorizable as exc:
            print(f"quantmesh backtest --fast: {exc}; running the in-process path instead", file=sys.stderr)
    progress = None
    if not args.no_progress and fast is None:
        from tqdm import tqdm

        total = await expected_ticks(data, args.data, start, end, cached=cache is not None)
        progress = tqdm(total=total, unit=" ticks", unit_scale=True, smoothing=0.1,
                        desc=f"{strategy.slug} {strategy.decision_timeframe}", file=sys.stderr)
    ticks = data.ticks(start, end)
    on_tick = (lambda _tick: progress.update(1)) if progress is not None else None
    out = Path(args.out)
    began = time.perf_counter()
    try:
        if args.mesh:
            result, startup = await _through_mesh(make_strategy, settings, ticks, on_tick, out / "mesh",
                                                  instrument=strategy.params.instrument, progress=progress)
            elapsed = time.perf_counter() - began - startup
        else:
            result = None
            if fast is not None:
                try:
                    result = fast_result(fast.run(await data.window(end), start, end))
                    print("quantmesh backtest --fast: the order plane's pre-trade risk limits are not applied",
                          file=sys.stderr)
                except NotVectorizable as exc:
                    print(f"quantmesh backtest --fast: {exc}; running the in-process path instead", file=sys.stderr)
                    fast = None
            if result is None:
                result = await InProcessBacktest(strategy, settings, policy=policy).run(ticks, on_tick=on_tick)
            elapsed = time.perf_counter() - began
    except DataError as exc:
        print(f"quantmesh backtest: {exc}", file=sys.stderr)
        return 2
    except MeshBacktestError as exc:
        print(f"\nquantmesh backtest --mesh: {exc}\n  plane logs: {out / 'mesh' / 'logs'}", file=sys.stderr)
        return 1
    finally:
        if progress is not None:
            progress.close()
        if skipped := data.skipped_summary():
            print(f"quantmesh backtest: {skipped}", file=sys.stderr)
    if result.ticks == 0:  # nothing was tested: keep the outputs of the last run that was
        window = f"[{args.start or 'the start'}, {args.end or 'the end'})"
        print(f"quantmesh backtest: no tick of {args.data} falls in the window {window}; {data.span()}; "
              f"{out / 'trades.csv'} and {out / 'equity.png'} are left as they were", file=sys.stderr)
        return 2
    trades, still_open = round_trips(result.fills)
    summary = summarize(trades, result.curve, settings.starting_cash, account=result.account,
                        currency=result.currency)
    write_trades_csv(trades, out / "trades.csv")
    title = (f"{strategy.slug} on {strategy.params.instrument} {strategy.decision_timeframe} "
             f"({', '.join(Path(p).name for p in args.data.split(','))}{', through the mesh' if args.mesh else ''}"
             f"{', fast path' if fast is not None else ''})")
    if result.curve:
        chart = Chart(title=title, instrument=strategy.params.instrument, currency=result.currency,
                      starting_cash=settings.starting_cash, curve=result.curve, trades=trades,
                      prices=await prices_of(data, start, end))
        plot_equity(chart, out / "equity.png")
        if args.html:
            write_html_report(chart, summary_rows(summary), out / "report.html")
    print(format_summary(summary, title=title))
    print(f"  {'ticks':<26}  {result.ticks:,} in {elapsed:.1f} s ({result.ticks / elapsed:,.0f} ticks/s, "
          f"{result.decision_bars / elapsed:,.0f} decision bars/s)" if elapsed > 0 else "")
    if still_open:
        print("  still open at the end: " + ", ".join(f"{k[1]} {decimal_text(v)}" for k, v in still_open.items()))
    if result.rejected:
        reasons = Counter(reason.split(":")[0] for _, reason in result.rejected)
        print(f"  refused intents: {len(result.rejected)} ("
              + ", ".join(f"{rule} x{n}" for rule, n in reasons.most_common()) + ")")
        print(f"    first: {result.rejected[0][1]}")
    if policy is not None:
        report_policy(policy, out)
    if args.mesh:
        if result.disagreements:
            print("  the position plane DISAGREES with the order plane's fills:")
            for line in result.disagreements:
                print(f"    {line}")
        else:
            print("  position plane: agrees with every fill the order plane streamed (quantity, realized PnL, "
                  "commission)")
    print(f"\n  trades:  {out / 'trades.csv'}")
    if result.curve:
        print(f"  equity:  {out / 'equity.png'}")
        if args.html:
            print(f"  report:  {out / 'report.html'}")
    return 1 if args.mesh and result.disagreements else 0


async def _through_mesh(make_strategy, settings, ticks, on_tick, work_dir: Path, *, instrument: str, progress):
    def announce(line: str) -> None:
        (progress.write if progress is not None else print)(line, file=sys.stderr)

    # Imported here: the in-process transport needs none of the process machinery.
    from services.cli.mesh_planes import mesh_planes

    began = time.perf_counter()
    factors = make_strategy().factor_specs() or "none"  # what the strategy reads, nothing more
    async with mesh_planes(work_dir, instrument=instrument, starting_cash=settings.starting_cash,
                           currency=settings.currency, factors=factors, announce=announce) as addresses:
        startup = time.perf_counter() - began
        announce(f"mesh: the four planes answered health in {startup:.1f} s; stepping the data through them")
        if progress is not None:
            progress.reset(total=progress.total)  # the ETA from the stepping's pace, not the planes' start-up
        return await MeshBacktest(make_strategy, addresses, settings).run(ticks, on_tick=on_tick), startup


def fast_result(fast) -> BacktestResult:
    """The fast path's result in the report's shapes (its equity curve is analytics, in floats)."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    curve = [EquityPoint(time=epoch + timedelta(microseconds=int(t)), equity=Decimal(f"{e:.2f}"), exposed=bool(x))
             for t, e, x in zip(fast.curve_time_us.tolist(), fast.curve_equity.tolist(), fast.curve_exposed.tolist())]
    return BacktestResult(fills=fast.fills, curve=curve, decisions=[], rejected=[], ticks=fast.ticks,
                          decision_bars=fast.decision_bars)

