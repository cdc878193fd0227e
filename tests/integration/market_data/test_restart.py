"""The real process: factors equal batch talib, also after a restart that warms up from PostgreSQL."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone

import grpc
import numpy as np
import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from quantmesh.market_data.v1 import market_data_pb2_grpc
from tests.integration.market_data.conftest import bar_files
from tests.support.ports import free_port
from tests.support.processes import PlaneProcess
from tests.support.talib_reference import talib_reference

M1 = common_pb2.TIMEFRAME_M1


def mid_series(candles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.array([getattr(c.mid, f) for c in candles]) for f in ("high", "low", "close"))


def wait_until(check, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise TimeoutError("condition not met")


def m1_history(stub) -> pb.GetCandlesResponse:
    return stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, limit=5000), timeout=10)


def m1_factors(stub, expected: int) -> list[pb.StreamFactorsResponse]:
    call = stub.StreamFactors(pb.StreamFactorsRequest(timeframes=[M1], resume_after_seq=0), timeout=60)
    got = []
    for message in call:
        got.append(message)
        if len(got) == expected:
            call.cancel()
            break
    return got


def test_factors_equal_talib_on_the_full_series_also_after_a_restart(database_url, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    first_files = bar_files(tmp_path / "first", 700) if (tmp_path / "first").mkdir() is None else None
    more_files = bar_files(tmp_path / "more", 1300) if (tmp_path / "more").mkdir() is None else None
    env = {"DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_REPLAY_SPEED": "max",
           "QUANTMESH_FACTOR_HISTORY": "500", "QUANTMESH_GRACE_SECONDS": "1"}

    plane = PlaneProcess("services.market_data", {**env, "QUANTMESH_FEED": "bars:{},{}".format(*first_files)},
                         tmp_path).start()
    try:
        plane.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            wait_until(lambda: len(m1_history(stub).candles) == 699)
            before = m1_factors(stub, 699)
        assert plane.terminate() == 0
    finally:
        plane.kill()

    # The restart replays a longer file: what was ingested before is dropped as already seen, the
    # open minute is rebuilt from stored S5 candles, seqs continue, and factors warm up from the database.
    plane = PlaneProcess("services.market_data", {**env, "QUANTMESH_FEED": "bars:{},{}".format(*more_files)},
                         tmp_path).start()
    try:
        plane.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            history = wait_until(lambda: (h := m1_history(stub)) and len(h.candles) == 1299 and h)
            after = m1_factors(stub, 1299)
    finally:
        plane.terminate()
        plane.kill()

    candles = list(history.candles)
    assert list(history.seqs) == sorted(set(history.seqs))  # seqs continued after the restart
    minutes = [line.split(",")[0] for line in more_files[0].read_text().splitlines()[1:1300]]
    assert [c.start_time.ToDatetime(tzinfo=timezone.utc) for c in candles] == [datetime.fromisoformat(m) for m in minutes]
    assert all(c.tick_count == 4 for c in candles)  # the minute open at shutdown was rebuilt, not cut
    assert [f.factors for f in after[:699]] == [f.factors for f in before]
    assert [f.factors.candle_start_time for f in after] == [c.start_time for c in candles]
    reference = talib_reference(*mid_series(candles))
    for i, message in enumerate(after):
        expected = {k: float(v[i]) for k, v in reference.items() if math.isfinite(v[i])}
        assert set(message.factors.values) == set(expected), i
        for name, value in message.factors.values.items():
            assert value == pytest.approx(expected[name], abs=1e-9, rel=0), (i, name)
