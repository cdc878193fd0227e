"""`python -m services.market_data` as a process: the default synthetic feed, and a bad setting."""

from __future__ import annotations

import subprocess
import sys

import grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2 as pb
from quantmesh.market_data.v1 import market_data_pb2_grpc
from tests.support.ports import free_port
from tests.support.postgres import PROJECT_ROOT
from tests.support.processes import PlaneProcess


def test_the_synthetic_feed_streams_ticks_and_candles_and_answers_quotes(database_url, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    plane = PlaneProcess("services.market_data", {
        "DATABASE_URL": database_url, "QUANTMESH_LISTEN": address, "QUANTMESH_INSTRUMENTS": "USD_JPY,BTC_JPY",
        # a Monday, so the FX market is open whatever day the test runs; 20x so an S5 candle closes soon
        "QUANTMESH_SYNTHETIC_START": "2026-01-05T09:00:00+00:00", "QUANTMESH_REPLAY_SPEED": "20x",
        "QUANTMESH_GRACE_SECONDS": "1"}, tmp_path).start()
    try:
        plane.wait_healthy(address)
        with grpc.insecure_channel(address) as channel:
            stub = market_data_pb2_grpc.MarketDataStub(channel)
            listed = stub.ListInstruments(pb.ListInstrumentsRequest(), timeout=5)
            assert [(i.symbol, i.feed) for i in listed.instruments] == [("USD_JPY", "synthetic"), ("BTC_JPY", "synthetic")]
            candles = stub.StreamCandles(pb.StreamCandlesRequest(instruments=["USD_JPY"],
                                                                 timeframes=[common_pb2.TIMEFRAME_S5]), timeout=60)
            candle = next(iter(candles)).candle
            candles.cancel()
            assert candle.closed and candle.tick_count > 0 and candle.bid.low < candle.ask.low
            assert candle.end_time.seconds - candle.start_time.seconds == 5
            quote = stub.GetQuote(pb.GetQuoteRequest(instrument="BTC_JPY"), timeout=5)
            assert quote.seq > 0 and int(quote.tick.ask) > int(quote.tick.bid) > 1_000_000
            assert quote.tick.aggressor in (common_pb2.SIDE_BUY, common_pb2.SIDE_SELL)
        assert plane.terminate() == 0
    finally:
        plane.kill()


def test_a_bad_setting_stops_the_process_with_a_sentence_naming_the_variable():
    result = subprocess.run([sys.executable, "-m", "services.market_data"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=60, env={"PATH": "", "QUANTMESH_REPLAY_SPEED": "warp",
                                                        "PYTHONPATH": ":".join(sys.path)})
    assert result.returncode == 2
    assert "QUANTMESH_REPLAY_SPEED: 'warp' is not a replay speed" in result.stderr
