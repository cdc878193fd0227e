"""Fuzzes every RPC of every plane on a real mesh and prints what came back.

Starts the mesh the fuzz tests use (tests/fuzz/mesh.py: every plane its own process on loopback,
market data fed over PublishTicks, one strategy worker), on DATABASE_URL or an embedded PostgreSQL
under .quantmesh; then sends each RPC --examples generated requests (hostile well-formed
messages, garbage bytes, mutated messages) and prints, per RPC and in total, the count per status
code. UNKNOWN and INTERNAL are failures: the first few of each are printed with their bytes.
Afterwards it checks that every plane is SERVING, the reads answer, and no plane logged an internal error.

    ./qm python bench/fuzz_rpcs.py [--examples 20000] [--only Order.]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.db import create_database  # noqa: E402
from tests.fuzz.mesh import reads_still_work, start_fuzz_mesh  # noqa: E402
from tests.fuzz.rpcs import describe, every_rpc, fuzz  # noqa: E402
from tests.support.postgres import start_test_postgres  # noqa: E402

SHOWN = ("OK", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND", "ABORTED", "UNAVAILABLE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="generated requests per RPC")
    parser.add_argument("--only", default="", help="only RPCs whose name contains this, e.g. Order.Submit")
    args = parser.parse_args()
    admin_url, embedded = start_test_postgres()
    database_url = asyncio.run(create_database(admin_url, prefix="fuzz"))
    mesh = start_fuzz_mesh(database_url, ROOT / ".quantmesh" / "bench-logs" / "fuzz")
    total, broken = Counter(), 0
    try:
        print(f"{'rpc':<30}{'sent':>8}{'s':>7}  " + "".join(f"{c:>21}" for c in SHOWN) + "  other")
        for rpc in every_rpc():
            if args.only not in str(rpc):
                continue
            started = time.perf_counter()
            tally = fuzz(mesh.channels[rpc.plane], rpc, args.examples, stop_at_first_break=False)
            seconds = time.perf_counter() - started
            total.update(tally.codes)
            other = {k: v for k, v in tally.codes.items() if k not in SHOWN}
            print(f"{str(rpc):<30}{tally.sent:>8}{seconds:>7.1f}  "
                  + "".join(f"{tally.codes.get(c, 0):>21}" for c in SHOWN) + f"  {other or ''}", flush=True)
            if tally.broken:
                broken += len(tally.broken)
                print(describe(tally.broken))
        print(f"{'total':<30}{sum(total.values()):>8}         " + "".join(f"{total.get(c, 0):>21}" for c in SHOWN)
              + f"  { {k: v for k, v in total.items() if k not in SHOWN} or ''}")
        serving = mesh.all_serving()
        print(f"serving afterwards: {serving}")
        reads_still_work(mesh)
        print("reads afterwards: GetOrder, ListOrders, GetFlags, ListAudit, GetCandles, GetQuote, Snapshot, "
              "GetEquityCurve, GetStatus all answer")
        internal = mesh.internal_errors()
        print(f"UNKNOWN or INTERNAL answers: {broken}; internal errors in the planes' logs: {len(internal)}")
        for line in internal[:5]:
            print("  " + line[:500])
        return 0 if not broken and not internal and all(serving.values()) else 1
    finally:
        mesh.stop()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
