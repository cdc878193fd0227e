"""`quantmesh analysis ...`: what the strategies decided and how it went, and their settings by hand.

    quantmesh analysis report [--strategy SLUG] [--out out/analysis]   tables, trades.csv and plots
    quantmesh analysis signals [--strategy SLUG] [--action entry] [--limit 20]
    quantmesh analysis set SLUG fast_period=5 [NAME=VALUE ...] [--reset NAME] --reason "..."
    quantmesh analysis freeze SLUG --reason "..."      the policy leaves it alone, params are refused
    quantmesh analysis unfreeze SLUG --reason "..."

The address comes from --address, else QUANTMESH_ANALYSIS_ADDR, else 127.0.0.1:50056 (where
`quantmesh up` runs it); the token and TLS as for every other command. A refusal prints the
plane's sentence and exits 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from quantmesh.analysis.v1 import analysis_pb2 as pb
from quantmesh.analysis.v1 import analysis_pb2_grpc
from quantmesh.common.v1 import common_pb2
from services.cli.dial import call_plane
from services.common.config import DEFAULT_PORTS

DEFAULT_ADDRESS = f"127.0.0.1:{DEFAULT_PORTS['analysis']}"
REGIMES = {pb.VOLATILITY_REGIME_UNSPECIFIED: "unknown", pb.VOLATILITY_REGIME_LOW: "low",
           pb.VOLATILITY_REGIME_NORMAL: "normal", pb.VOLATILITY_REGIME_HIGH: "high"}
SIDES = {common_pb2.SIDE_BUY: "buy", common_pb2.SIDE_SELL: "sell"}


def add_analysis_parser(sub) -> None:
    parser = sub.add_parser("analysis", help="signals, performance, range metrics, the pattern book and the "
                                             "allocation policy; set, freeze and unfreeze a strategy's params",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=None,
                        help=f"analysis address (default: $QUANTMESH_ANALYSIS_ADDR or {DEFAULT_ADDRESS})")
    actions = parser.add_subparsers(dest="analysis_action", required=True)
    report = actions.add_parser("report", parents=[common], help="print the tables, write trades.csv and plots")
    report.add_argument("--strategy", default="", metavar="SLUG", help="only this strategy")
    report.add_argument("--out", default="out/analysis", help="folder for trades.csv, equity.png, patterns.png")
    signals = actions.add_parser("signals", parents=[common], help="the latest decisions, newest first")
    signals.add_argument("--strategy", default="", metavar="SLUG")
    signals.add_argument("--action", choices=("entry", "exit", "hold", "skip", "refused"), action="append")
    signals.add_argument("--limit", type=int, default=20)
    change = actions.add_parser("set", parents=[common], help="set params (inside the bounds the strategy declares)")
    change.add_argument("slug")
    change.add_argument("params", nargs="*", metavar="NAME=VALUE")
    change.add_argument("--reset", action="append", default=[], metavar="NAME",
                        help="take a param back to the workers' start value")
    change.add_argument("--reason", required=True)
    for name, text in (("freeze", "the policy leaves the strategy alone and param changes are refused"),
                       ("unfreeze", "lift the freeze")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("slug")
        action.add_argument("--reason", required=True)


def run_analysis(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    address = args.address or os.environ.get("QUANTMESH_ANALYSIS_ADDR") or DEFAULT_ADDRESS

    async def work(channel) -> None:
        stub = analysis_pb2_grpc.AnalysisStub(channel)
        action = args.analysis_action
        if action == "report":
            await report(stub, strategy=args.strategy, folder=Path(args.out), out=out)
        elif action == "signals":
            await show_signals(stub, args, out)
        elif action == "set":
            await set_params(stub, args, out)
        else:
            reply = await stub.FreezeStrategy(pb.FreezeStrategyRequest(
                strategy_slug=args.slug, frozen=action == "freeze", reason=args.reason), timeout=10)
            print(settings_table([reply.settings]), file=out)

    if args.analysis_action == "set" and not all("=" in p for p in args.params):
        print(f"error: params are NAME=VALUE, got {[p for p in args.params if '=' not in p]}", file=err)
        return 2
    return call_plane("analysis", address, work, err)


async def set_params(stub, args, out: TextIO) -> None:
    params = dict(p.split("=", 1) for p in args.params)
    reply = await stub.SetStrategyParams(pb.SetStrategyParamsRequest(
        strategy_slug=args.slug, params=params, reset=args.reset, reason=args.reason), timeout=10)
    print(settings_table([reply.settings]), file=out)


async def show_signals(stub, args, out: TextIO) -> None:
    actions = [pb.SignalAction.Value(f"SIGNAL_ACTION_{a.upper()}") for a in args.action or ()]
    reply = await stub.ListSignals(pb.ListSignalsRequest(strategy_slug=args.strategy, actions=actions,
                                                         limit=args.limit), timeout=10)
    rows = [(s.decision_time.ToJsonString(), s.strategy_slug, common_pb2.StrategyRole.Name(s.role)[14:].lower(),
             pb.SignalAction.Name(s.action)[14:].lower(), f"v{s.params_version}/v{s.allocation_version}",
             s.client_order_id or "-", s.reason[:70]) for s in reply.signals]
    print(table(("decided", "strategy", "role", "action", "params/alloc", "client order id", "reason"), rows), file=out)


# ---- the report ---------------------------------------------------------------------------------

async def report(stub, *, strategy: str, folder: Path, out: TextIO) -> None:
    performance = await stub.GetPerformance(pb.GetPerformanceRequest(strategy_slug=strategy, include_trades=True),
                                            timeout=30)
    allocations = await stub.GetAllocations(pb.GetAllocationsRequest(strategy_slug=strategy), timeout=10)
    settings = await stub.GetStrategySettings(pb.GetStrategySettingsRequest(strategy_slug=strategy), timeout=10)
    ranges = await stub.GetRangeMetrics(pb.GetRangeMetricsRequest(), timeout=10)
    patterns = await stub.GetPatternBook(pb.GetPatternBookRequest(strategy_slug=strategy), timeout=30)
    sections = [
        ("Performance (net of commission, in each instrument's quote currency; rolling = the latest trades)",
         performance_table(performance.performance)),
        (f"Allocation (policy: {allocations.policy})", allocation_table(allocations.recommendations)),
        ("Settings", settings_table(settings.settings)),
        ("Range metrics", ranges_table(ranges.metrics)),
        ("Pattern book (entries by the market state they were decided in)", pattern_table(patterns.buckets)),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    trades = [t for p in performance.performance for t in p.trades]
    write_trades(trades, folder / "trades.csv")
    written = [folder / "trades.csv", *plots(performance.performance, patterns.buckets, folder)]
    for title, body in sections:
        print(f"{title}\n{body}\n", file=out)
    print("wrote " + ", ".join(str(p) for p in written), file=out)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    if not rows:
        return "  (none yet)"
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _ratio(message, field: str) -> str:
    return f"{getattr(message, field):.2f}" if message.HasField(field) else "-"


def figures_cells(f: pb.PerformanceFigures) -> list[str]:
    return [str(f.trades), f"{f.win_rate:.0%}", f"{f.expectancy:.2f}", _ratio(f, "profit_factor"), _ratio(f, "sharpe"),
            f.net_pnl, f.max_drawdown]


def performance_table(performance: Sequence[pb.Performance]) -> str:
    header = ("strategy", "instrument", "", "trades", "win", "expectancy", "PF", "sharpe", "net PnL", "max DD")
    rows = []
    for p in performance:
        rows.append([p.strategy_slug, p.instrument, "overall", *figures_cells(p.overall)])
        rows.append(["", "", f"last {p.rolling_trades}", *figures_cells(p.rolling)])
    return table(header, rows)


def _allocation(a: pb.Allocation) -> str:
    return f"x{a.size_multiplier}" if a.entries_enabled else "entries off"


def allocation_table(recommendations: Sequence[pb.AllocationRecommendation]) -> str:
    rows = [(r.strategy_slug, REGIMES[r.regime],
             _allocation(r.recommended) if r.HasField("recommended") else f"(waiting: {r.basis.trades} trades)",
             _allocation(r.applied), "frozen" if r.frozen else "", r.recommended.reason[:80]) for r in recommendations]
    return table(("strategy", "regime", "recommended", "applied", "", "why"), rows)


def settings_table(settings: Sequence[pb.StrategySettings]) -> str:
    rows = [(s.strategy_slug, f"v{s.version}", ", ".join(f"{k}={v}" for k, v in sorted(s.params.items())) or "-",
             _allocation(s.allocation) if s.HasField("allocation") else "x1", "frozen" if s.frozen else "",
             s.updated_by or "-", s.reason[:60]) for s in settings]
    return table(("strategy", "version", "params", "allocation", "", "by", "why"), rows)


def ranges_table(metrics: Sequence[pb.RangeMetrics]) -> str:
    rows = []
    for m in metrics:
        sessions = "; ".join(f"{s.session} {s.range:.3f}{' (open)' if s.open else ''} avg {s.average_range:.3f}"
                             for s in m.sessions)
        rows.append((m.instrument, m.as_of.ToJsonString(), f"{m.atr:.4f}", f"{m.atr_percentile:.0%}",
                     REGIMES[m.regime], f"{m.return_stdev:.2e}", f"{m.spread:.4f}", f"{m.average_spread:.4f}",
                     sessions or "-"))
    return table(("instrument", "as of", "ATR", "pctile", "regime", "ret stdev", "spread", "avg spread", "sessions"),
                 rows)


def pattern_table(buckets: Sequence[pb.PatternBucket], most: int = 20) -> str:
    rows = [(b.strategy_slug, SIDES.get(b.side, "?"), REGIMES[b.regime], b.session, b.confidence,
             ", ".join(f"{k} {v}" for k, v in sorted(b.indicator_bins.items())) or "-", b.entries, b.closed,
             f"{b.win_rate:.0%}", f"{b.expectancy:.2f}", b.net_pnl) for b in buckets[:most]]
    return table(("strategy", "side", "regime", "session", "confidence", "indicators", "entries", "closed", "win",
                  "expectancy", "net PnL"), rows)


def write_trades(trades: Sequence[pb.Trade], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["strategy", "instrument", "side", "quantity", "opened", "closed", "entry_price", "exit_price",
                         "gross_pnl", "commission", "net_pnl", "entry_client_order_id", "exit_client_order_id"])
        for t in trades:
            writer.writerow([t.strategy_slug, t.instrument, SIDES.get(t.side, "?"), t.quantity,
                             t.opened_time.ToJsonString(), t.closed_time.ToJsonString(), t.entry_price, t.exit_price,
                             t.gross_pnl, t.commission, t.net_pnl, t.entry_client_order_id, t.exit_client_order_id])


def plots(performance: Sequence[pb.Performance], buckets: Sequence[pb.PatternBucket], folder: Path) -> list[Path]:
    """equity.png: each strategy's cumulative net PnL by trade close; patterns.png: expectancy per bucket."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axis = plt.subplots(figsize=(10, 5))
    for p in performance:
        if p.trades:
            times = [p.trades[0].opened_time.ToDatetime(), *(t.closed_time.ToDatetime() for t in p.trades)]
            total, curve = 0.0, [0.0]  # from flat at the first trade's open
            for t in p.trades:
                total += float(t.net_pnl)
                curve.append(total)
            axis.step(times, curve, where="post", label=f"{p.strategy_slug} {p.instrument}")
    axis.set_title("Cumulative net PnL of closed trades")
    axis.set_ylabel("quote currency")
    if axis.get_legend_handles_labels()[0]:
        axis.legend()
    figure.autofmt_xdate()
    figure.savefig(folder / "equity.png", dpi=100)
    plt.close(figure)
    written.append(folder / "equity.png")
    closed = [b for b in buckets if b.closed][:20]
    figure, axis = plt.subplots(figsize=(10, max(3, 0.35 * len(closed) + 1)))
    labels = [f"{b.strategy_slug} {SIDES.get(b.side, '?')} {REGIMES[b.regime]} {b.session} {b.confidence}"
              for b in closed]
    axis.barh(labels, [b.expectancy for b in closed], color=["tab:green" if b.expectancy > 0 else "tab:red"
                                                              for b in closed])
    axis.set_title("Expectancy per closed entry, by market state")
    figure.tight_layout()
    figure.savefig(folder / "patterns.png", dpi=100)
    plt.close(figure)
    written.append(folder / "patterns.png")
    return written
