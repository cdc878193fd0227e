"""Lock propagation: from SetGlobalFlags(lock) returning to the last of N watcher processes seeing it.

    ./qm python bench/control_lock_propagation.py [--watchers 25] [--toggles 200]

Starts `python -m services.control` (on DATABASE_URL, or an embedded PostgreSQL
under .quantmesh/bench-control-pg), then N watcher processes, each with its own
event loop and channel, following WatchFlags and reporting (version, time.time())
through a multiprocessing queue. Each toggle (lock, unlock, lock, ...) is one
SetGlobalFlags call; its latency is the last watcher's receive time minus the
time the call returned (same machine, same wall clock). A negative figure means
a watcher saw the change before the caller got its answer. Prints figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]


def watcher(address: str, index: int, reports, ready) -> None:
    import grpc

    from quantmesh.control.v1 import control_pb2 as pb
    from quantmesh.control.v1 import control_pb2_grpc

    async def follow() -> None:
        nonlocal ready
        async with grpc.aio.insecure_channel(address) as channel:
            call = control_pb2_grpc.ControlStub(channel).WatchFlags(pb.WatchFlagsRequest())
            async for message in call:
                if not message.heartbeat:
                    reports.put((index, message.snapshot.version, time.time()))
                    if ready is not None:
                        ready.set()
                        ready = None

    try:
        asyncio.run(follow())
    except KeyboardInterrupt:
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=25)
    parser.add_argument("--toggles", type=int, default=200)
    options = parser.parse_args()

    import grpc

    from quantmesh.control.v1 import control_pb2 as pb
    from quantmesh.control.v1 import control_pb2_grpc
    from tests.support.ports import free_port
    from tests.support.processes import PlaneProcess

    embedded = None
    url = os.environ.get("DATABASE_URL")
    if not url:
        from services.common.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(ROOT / ".quantmesh" / "bench-control-pg", fresh=True)
        url = embedded.start()
    address = f"127.0.0.1:{free_port()}"
    plane = PlaneProcess("services.control", {"DATABASE_URL": url, "QUANTMESH_LISTEN": address,
                                              "QUANTMESH_TOKENS": "", "QUANTMESH_LOG_LEVEL": "WARNING"},
                         Path(tempfile.mkdtemp(prefix="bench-control-"))).start()
    context = mp.get_context("spawn")
    reports = context.Queue()
    workers = []
    try:
        plane.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            stub = control_pb2_grpc.ControlStub(channel)
            start_version = stub.GetFlags(pb.GetFlagsRequest()).snapshot.version
            # Start from unlocked so that every call below is a real change (a new version).
            if stub.GetFlags(pb.GetFlagsRequest()).snapshot.global_lock:
                start_version = stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=False, reason="bench")).snapshot.version
            readies = []
            for index in range(options.watchers):
                ready = context.Event()
                process = context.Process(target=watcher, args=(address, index, reports, ready), daemon=True)
                process.start()
                workers.append(process)
                readies.append(ready)
            deadline = time.monotonic() + 120
            for ready, process in zip(readies, workers):
                while not ready.wait(0.2):
                    if not process.is_alive() or time.monotonic() > deadline:
                        raise SystemExit("a watcher process died or did not connect within 120 s")
            while not reports.empty():
                reports.get_nowait()  # the snapshots on connect

            latencies, call_times = [], []
            for toggle in range(options.toggles):
                before = time.time()
                reply = stub.SetGlobalFlags(pb.SetGlobalFlagsRequest(global_lock=toggle % 2 == 0,
                                                                     reason=f"bench toggle {toggle}"))
                returned = time.time()
                call_times.append(returned - before)
                version = reply.snapshot.version
                seen: dict[int, float] = {}
                while len(seen) < options.watchers:
                    index, got, at = reports.get(timeout=60)
                    if got == version:
                        seen[index] = at
                    elif got > version:
                        raise SystemExit(f"watcher {index} saw version {got} while waiting for {version}")
                latencies.append(max(seen.values()) - returned)
            assert version == start_version + options.toggles
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(5)
        plane.terminate()
        if embedded is not None:
            embedded.stop()

    ms = [value * 1000 for value in latencies]
    calls = [value * 1000 for value in call_times]
    print(f"lock propagation to the last of {options.watchers} watcher processes over {options.toggles} toggles")
    print(f"  p50 {percentile(ms, 0.50):.2f} ms   p99 {percentile(ms, 0.99):.2f} ms   "
          f"max {max(ms):.2f} ms   min {min(ms):.2f} ms   mean {statistics.fmean(ms):.2f} ms")
    print(f"  SetGlobalFlags round trip: p50 {percentile(calls, 0.50):.2f} ms   p99 {percentile(calls, 0.99):.2f} ms")
    print(f"  toggles per second (call + propagation, sequential): "
          f"{options.toggles / (sum(call_times) + sum(max(0.0, v) for v in latencies)):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
