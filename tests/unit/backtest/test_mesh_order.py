"""The mesh driver puts the two market-data streams back into the engine's publication order."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2
from services.backtest.mesh import MeshBacktestError, in_published_order

T0 = datetime(2013, 2, 5, tzinfo=timezone.utc)


def candle(seq: int, timeframe: int, start: datetime) -> market_data_pb2.StreamCandlesResponse:
    event = market_data_pb2.StreamCandlesResponse(seq=seq)
    event.candle.timeframe = timeframe
    event.candle.start_time.FromDatetime(start)
    return event


def factors(seq: int, timeframe: int, start: datetime) -> market_data_pb2.StreamFactorsResponse:
    event = market_data_pb2.StreamFactorsResponse(seq=seq)
    event.factors.timeframe = timeframe
    event.factors.candle_start_time.FromDatetime(start)
    return event


def test_each_candle_is_followed_by_its_own_factors_and_only_those():
    s5 = candle(1, common_pb2.TIMEFRAME_S5, T0 + timedelta(seconds=55))
    m1 = candle(2, common_pb2.TIMEFRAME_M1, T0)
    m5 = candle(3, common_pb2.TIMEFRAME_M5, T0)  # still warming up: no factors
    s5f, m1f = factors(7, common_pb2.TIMEFRAME_S5, T0 + timedelta(seconds=55)), factors(8, common_pb2.TIMEFRAME_M1, T0)
    paired = in_published_order([s5, m1, m5], [s5f, m1f])
    assert [(c.seq, f.seq if f else None) for c, f in paired] == [(1, 7), (2, 8), (3, None)]


def test_a_factor_event_of_a_different_start_is_not_paired_with_the_candle():
    m1 = candle(2, common_pb2.TIMEFRAME_M1, T0)
    stray = factors(8, common_pb2.TIMEFRAME_M1, T0 - timedelta(minutes=1))
    with pytest.raises(MeshBacktestError, match="1 factor events match no candle"):
        in_published_order([m1], [stray])
