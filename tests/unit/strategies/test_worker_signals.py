"""A worker's decisions as signals: one per decision, refusals too, each valid for the analysis plane."""

from __future__ import annotations

import logging

from quantmesh.analysis.v1 import analysis_pb2
from quantmesh.market_data.v1 import market_data_pb2
from services.analysis.signals import signal_from_proto
from services.strategies.registry import load_strategy
from services.strategies.sdk import StrategyHarness
from services.strategies.signals import SignalRecorder
from services.strategies.status import WorkerStatus
from services.strategies.worker import StrategyWorker
from tests.unit.strategies.test_worker import (T0, FakeMarket, Flags, Orders, Positions, candle, ma_cross_history,
                                                run_until)


class Captured:
    def __init__(self) -> None:
        self.signals: list[analysis_pb2.Signal] = []

    def put(self, signal) -> None:
        self.signals.append(signal)


def recorded_worker(orders: Orders) -> tuple[StrategyWorker, FakeMarket, Captured]:
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    harness = StrategyHarness(strategy, logging.getLogger("test"))
    market, captured = FakeMarket(ma_cross_history()), Captured()
    worker = StrategyWorker(harness=harness, role="entry", market=market, positions=Positions(), orders=orders,
                            flags=Flags(), status=WorkerStatus(slug="ma_cross", role="entry", started=T0, params={}),
                            reconnect_seconds=0.01,
                            signals=SignalRecorder(harness=harness, role="entry", instrument="USD_JPY", outbox=captured))
    return worker, market, captured


async def test_every_decision_and_refusal_is_a_valid_signal(monkeypatch):
    monkeypatch.setattr("services.strategies.worker.FACTOR_WAIT_SECONDS", 0.01)
    worker, market, captured = recorded_worker(Orders(accept=False))
    await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=31, candle=candle(30, 100.5)))
    await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=32, candle=candle(31, 100.5)))
    await run_until(worker, lambda: len(captured.signals) >= 3)
    entry, refused, hold = captured.signals
    assert [s.action for s in captured.signals] == [analysis_pb2.SIGNAL_ACTION_ENTRY, analysis_pb2.SIGNAL_ACTION_REFUSED,
                                                    analysis_pb2.SIGNAL_ACTION_HOLD]
    assert entry.client_order_id == refused.client_order_id == worker.orders.sent[0].client_order_id
    assert refused.reason == "guard.halted" and hold.reason == "no entry signal"
    assert entry.indicators["sma_fast"] > entry.indicators["sma_slow"] and entry.price_ref == 100.5
    assert entry.signal_id.endswith(".0") and refused.signal_id.endswith(".1") and hold.signal_id.endswith(".0")
    assert len({s.signal_id for s in captured.signals}) == 3 and entry.signal_id.startswith("ma_cross.e.USD_JPY.")
    for i, signal in enumerate(captured.signals):
        record = signal_from_proto(i, signal)  # the analysis plane's own checks
        assert record.params_version == 0 and record.size_multiplier == 1
