"""The strategies that answer per candle on the fast path (services/strategies/per_candle.py) against
their event path, on the USD/JPY month in data/ (gzipped), one run, default parameters.

For each: candles decided, seconds of the in-process event path (the live worker, order engine,
paper venue, ledger) and of the fast path (opening the tick cache, building the candles, the rule
at every candle, the loop and the fills), their ratio, and whether the fills are the same
(time, side, quantity, price). Exits 1 if any differ.

    ./qm python bench/per_candle.py [--strategies rsi_threshold,m1scalper] [--fill-at next|current]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import backtest_throughput as bt  # noqa: E402

PER_CANDLE = ("rsi_threshold", "m1scalper", "micro_adaptive_revert", "wick_reversal_blend", "macd_rsi_div",
              "session_open", "squeeze_pulse_break", "wick_reversal_pro", "micro_multi")


def main() -> None:
    from services.backtest.cache import TickCache
    from services.backtest.data import MarketData
    from services.backtest.fast import FastBacktest, FastSettings
    from services.backtest.inprocess import InProcessBacktest
    from services.strategies.registry import load_strategy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(PER_CANDLE))
    parser.add_argument("--fill-at", default="next", choices=("next", "current"))
    args = parser.parse_args()
    differ = []
    with tempfile.TemporaryDirectory(prefix="qm-bench-cache-") as folder:
        cache = Path(folder)
        asyncio.run(bt._fill_cache(cache))
        print(f"USD/JPY, 2013-02, default parameters, fills at the {args.fill_at} quote, one run\n")
        print(f"  {'strategy':<22} {'candles':>8} {'event s':>8} {'fast s':>8} {'fast/event':>11} {'fills':>6}  same")
        for slug in args.strategies.split(","):
            strategy = load_strategy(slug, {})
            began = time.perf_counter()
            event = asyncio.run(InProcessBacktest(strategy, bt._settings(args.fill_at)).run(bt._cached_ticks(cache, None)))
            event_s = time.perf_counter() - began
            began = time.perf_counter()
            columns = asyncio.run(MarketData(bt.SPEC, "USD_JPY", cache=TickCache(cache)).columns())
            fast = FastBacktest(strategy, FastSettings(fill_at=args.fill_at)).run(columns, None, None)
            fast_s = time.perf_counter() - began
            same = [(f.time, f.side, f.quantity, f.price) for f in fast.fills] == \
                [(f.time, f.side, f.quantity, f.price) for f in event.fills]
            if not same:
                differ.append(slug)
            print(f"  {slug:<22} {fast.decision_bars:>8,} {event_s:>8.2f} {fast_s:>8.2f} {event_s / fast_s:>10.1f}x "
                  f"{len(fast.fills):>6}  {'yes' if same else 'NO'}")
    if differ:
        raise SystemExit(f"the fast path's fills differ from the event path's for {', '.join(differ)}")


if __name__ == "__main__":
    main()
