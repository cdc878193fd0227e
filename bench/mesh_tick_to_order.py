"""Tick-to-order latency through the live mesh, measured from the trace spans.

Starts the whole mesh as processes (tests/support/mesh.py: control, market_data, order,
position and ENTRY+EXIT workers), replaying the real USD/JPY one-minute bid/ask bars of
February 2013 from data/ (gzipped), with every plane exporting spans to an in-process OTLP
receiver (tests/support/otlp.py). After the run it joins each Order.Submit server span to
the candle-closed span of its trace and prints, over every submitted intent:

  tick -> order acknowledged   market_data.close_candle start -> Order/Submit server span end
                               (the candle closes inside the span of the tick or of the feed
                               clock's step that ended it, so this is the full path from the
                               quote entering market_data to the intent's acknowledgement)
  and its parts: candle -> decision start, decision -> submit acknowledged (split where the Submit
  reaches the order plane; of the time in the plane, how long the entries that came right after
  one of the plane's own fills waited for the position plane to apply it), the broker call,
  decision -> fill recorded, fill -> position applied.

All spans come from processes on this machine, so their clocks agree. PostgreSQL is
DATABASE_URL or an embedded one (pgserver) in a temporary directory.

    ./qm python bench/mesh_tick_to_order.py [--seconds 40] [--speed 120x] [--strategies scalp_ping_5s,ma_cross]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.proto.trace.v1 import trace_pb2  # noqa: E402

from tests.support.data import M1_ASK, M1_BID  # noqa: E402
from tests.support.mesh import Mesh, StrategyPair, bars_feed  # noqa: E402
from tests.support.otlp import OtlpReceiver  # noqa: E402
from services.common.db import create_database  # noqa: E402
from tests.support.postgres import start_test_postgres  # noqa: E402

SERVER = trace_pb2.Span.SpanKind.SPAN_KIND_SERVER
PARAMS = {
    "scalp_ping_5s": {"warmup_bars": "20"},
    "ma_cross": {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3", "take_profit_pips": "3",
                 "max_hold_minutes": "5", "warmup_bars": "20"},
    "rsi_threshold": {"period": "5", "stop_loss_pips": "3", "take_profit_pips": "3", "max_hold_minutes": "5",
                      "warmup_bars": "20"},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def line(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<34} (no samples)"
    return (f"  {label:<34} n={len(values):<5} p50={percentile(values, 50):8.2f} ms  "
            f"p99={percentile(values, 99):8.2f} ms  mean={statistics.fmean(values):8.2f} ms  max={max(values):8.2f} ms")


def measure(receiver: OtlpReceiver) -> dict[str, list[float]]:
    spans = receiver.spans()
    figures: dict[str, list[float]] = {k: [] for k in (
        "tick -> order acknowledged", "candle closed -> decision start", "decision -> submit acknowledged",
        "  decision -> Submit arrives", "  Submit in the order plane", "    entry waiting for positions",
        "broker call (paper venue)", "decision -> fill recorded", "fill -> position applied")}
    by_parent: dict[str, list] = {}
    for span in spans:
        by_parent.setdefault(span.parent_id, []).append(span)
    for submit in (s for s in spans if s.name == "/quantmesh.order.v1.Order/Submit" and s.kind == SERVER
                   and s.service == "order"):
        chain = receiver.ancestors(submit)
        decide = next((s for s in chain if s.name.startswith("strategy.decide")), None)
        candle = next((s for s in chain if s.name == "market_data.close_candle"), None)
        if decide is None or candle is None:
            continue
        figures["tick -> order acknowledged"].append((submit.end_ns - candle.start_ns) / 1e6)
        figures["candle closed -> decision start"].append((decide.start_ns - candle.start_ns) / 1e6)
        figures["decision -> submit acknowledged"].append((submit.end_ns - decide.start_ns) / 1e6)
        figures["  decision -> Submit arrives"].append((submit.start_ns - decide.start_ns) / 1e6)
        figures["  Submit in the order plane"].append((submit.end_ns - submit.start_ns) / 1e6)
        # An entry right after one of the plane's own fills waits for the position plane to apply it
        # (its PnL rules must see it); the wait is on the order.submit span, so n counts those Submits.
        for child in by_parent.get(submit.span_id, ()):
            if child.name == "order.submit" and "order.exposure_wait_ms" in child.attributes:
                figures["    entry waiting for positions"].append(float(child.attributes["order.exposure_wait_ms"]))
    for broker in (s for s in spans if s.name == "broker.submit"):
        figures["broker call (paper venue)"].append(broker.duration_ms)
    for fill in (s for s in spans if s.name == "order.fill"):
        decide = receiver.span(fill.parent_id)
        if decide is not None and decide.name.startswith("strategy.decide"):
            figures["decision -> fill recorded"].append((fill.end_ns - decide.start_ns) / 1e6)
        for applied in by_parent.get(fill.span_id, ()):
            if applied.name == "position.apply_fill":
                figures["fill -> position applied"].append((applied.end_ns - fill.end_ns) / 1e6)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40.0, help="how long to let the mesh trade (default 40)")
    parser.add_argument("--speed", default="120x", help="replay speed (default 120x: an M1 candle every 0.5 s)")
    parser.add_argument("--strategies", default="scalp_ping_5s,ma_cross",
                        help=f"comma-separated, from {', '.join(PARAMS)} (default scalp_ping_5s,ma_cross)")
    args = parser.parse_args()
    slugs = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in slugs if s not in PARAMS]
    if unknown:
        raise SystemExit(f"--strategies: no benchmark params for {', '.join(unknown)}; use {', '.join(PARAMS)}")

    admin_url, embedded = start_test_postgres()
    try:
        database_url = await create_database(admin_url, prefix="qm_bench")
        with OtlpReceiver() as receiver, tempfile.TemporaryDirectory(prefix="qm-mesh-bench-") as logs:
            mesh = Mesh(database_url=database_url, log_dir=Path(logs), speed=args.speed,
                        feed=bars_feed(M1_BID, M1_ASK),
                        strategies=[StrategyPair(slug=s, params=PARAMS[s]) for s in slugs],
                        otel_endpoint=receiver.endpoint,
                        plane_env={"order": {"QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000"}})
            started = time.perf_counter()
            await asyncio.to_thread(mesh.start)
            print(f"mesh of {len(mesh.processes)} processes healthy in {time.perf_counter() - started:.1f} s; "
                  f"trading for {args.seconds:g} s at {args.speed} ...", flush=True)
            try:
                await asyncio.sleep(args.seconds)
            finally:
                await asyncio.to_thread(mesh.stop)  # SIGTERM flushes each process's last spans
            figures = measure(receiver)
            closes = [s for s in receiver.spans() if s.name == "market_data.close_candle"]
    finally:
        if embedded is not None:
            embedded.stop()

    print(f"\nmesh tick-to-order latency ({', '.join(slugs)}; bars replay at {args.speed}; "
          f"{len(closes)} candles closed; from trace spans)")
    for label, values in figures.items():
        print(line(label, values))


if __name__ == "__main__":
    asyncio.run(main())
