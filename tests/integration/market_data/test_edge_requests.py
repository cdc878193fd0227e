"""MarketData over gRPC: hostile field values are INVALID_ARGUMENT naming the field, and nothing is ingested."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from tests.integration.market_data.conftest import running_plane

PUSH = {"QUANTMESH_FEED": "push", "QUANTMESH_INSTRUMENTS": "USD_JPY"}
M1 = common_pb2.TIMEFRAME_M1
MONDAY = Timestamp(seconds=1767603601)  # 2026-01-05T09:00:01Z


def tick(**fields) -> pb.Tick:
    return pb.Tick(**{"instrument": "USD_JPY", "time": MONDAY, "bid": "157.100", "ask": "157.103", **fields})


def token(**body) -> str:
    fields = {"i": "USD_JPY", "t": "M1", "l": False, "c": 0, **body}
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


TICK_CASES = [
    (tick(bid="١٢٣"), "ticks[0].bid '١٢٣' is not a positive finite decimal: it is not a decimal number in ASCII"),
    (tick(ask="𝟙"), "ticks[0].ask '𝟙' is not a positive finite decimal"),
    (tick(bid="1e999999"), "ticks[0].bid '1e999999' is not a positive finite decimal: it has 1,000,000 digits"),
    (tick(volume="1e-16384"), "ticks[0].volume '1e-16384' is not a non-negative decimal: it has 16,384 digits"),
    (tick(time=Timestamp(seconds=253402300799, nanos=999999000)), "ticks[0].time 9999-12-31T23:59:59.999999+00:00"),
    (tick(time=Timestamp(seconds=1, nanos=-1)), "ticks[0].time is not a valid timestamp: nanos -1"),
    (tick(instrument="USD_JPY\x00"), "ticks[0].instrument 'USD_JPY\\x00' is not an instrument of this plane"),
]


async def test_hostile_ticks_are_refused_naming_the_field(fresh_database_url):
    async with running_plane(fresh_database_url, PUSH) as p:
        for hostile, words in TICK_CASES:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await p.stub.PublishTicks(pb.PublishTicksRequest(ticks=[tick(), hostile]))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
            assert words.replace("ticks[0]", "ticks[1]") in err.value.details()
        assert p.plane.engine.ticks_accepted == 0  # not even the good first tick of each batch


async def test_hostile_reads_are_refused_and_reads_still_work(fresh_database_url):
    cases = [
        (pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, start_time=Timestamp(seconds=253402300800)),
         "start_time is not a valid timestamp"),
        (pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, end_time=Timestamp(nanos=10**9)),
         "end_time is not a valid timestamp: nanos 1,000,000,000"),
        (pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, page_token=token(c=10**30)), "page_token"),
        (pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, page_token=token(c=-10**17)), "page_token"),
        (pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1, page_token="x" * 100_000), "(100,000 characters)"),
    ]
    async with running_plane(fresh_database_url, PUSH) as p:
        for request, words in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await p.stub.GetCandles(request)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
            assert words in err.value.details()
        for stream in (p.stub.StreamTicks(pb.StreamTicksRequest(resume_after_seq=2**64 - 1)),
                       p.stub.StreamCandles(pb.StreamCandlesRequest(instruments=["USD_JPY\n"]))):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stream.read()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        reply = await p.stub.GetCandles(pb.GetCandlesRequest(instrument="USD_JPY", timeframe=M1))
        assert list(reply.candles) == []
        accepted = await p.stub.PublishTicks(pb.PublishTicksRequest(ticks=[tick()]))
        assert accepted.accepted == 1
