"""The worker loop with in-memory ports: pairing candles with factors, flags, ids, errors."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from quantmesh.market_data.v1 import market_data_pb2
from services.common.timeutil import to_timestamp
from services.strategies.adapters import SubmitOutcome
from services.strategies.desk import EntryDesk, entry_client_id, exit_client_id
from services.strategies.registry import load_strategy
from services.strategies.sdk import EntrySignal, OpenPosition, Strategy, StrategyHarness
from services.strategies.status import WorkerStatus
from services.strategies.worker import StrategyWorker

T0 = datetime(2013, 2, 1, tzinfo=timezone.utc)


def closing_time(i: int) -> datetime:
    """When the test's candle i was closed: by a quote 3.5 s into the next minute."""
    return T0 + timedelta(minutes=i + 1, seconds=3, microseconds=500_000)


def candle(i: int, mid: float, tf: int = 2) -> market_data_pb2.Candle:
    start = T0 + timedelta(minutes=i)
    ohlc = market_data_pb2.Ohlc(open=mid, high=mid + 0.01, low=mid - 0.01, close=mid)
    bid = market_data_pb2.Ohlc(open=mid - 0.005, high=mid + 0.005, low=mid - 0.015, close=mid - 0.005)
    ask = market_data_pb2.Ohlc(open=mid + 0.005, high=mid + 0.015, low=mid - 0.005, close=mid + 0.005)
    return market_data_pb2.Candle(instrument="USD_JPY", timeframe=tf, start_time=to_timestamp(start),
                                  end_time=to_timestamp(start + timedelta(minutes=1)), bid=bid, ask=ask, mid=ohlc,
                                  tick_count=4, closed=True, closed_time=to_timestamp(closing_time(i)))


class FakeMarket:
    def __init__(self, history):
        self._history = history
        self.candle_queue: asyncio.Queue = asyncio.Queue()
        self.factor_queue: asyncio.Queue = asyncio.Queue()
        self.candle_resumes: list = []

    async def history(self, instrument, timeframe, count):
        return self._history[-count:]

    async def _drain(self, queue):
        while True:
            item = await queue.get()
            yield item

    def candles(self, instrument, timeframes, after_seq):
        self.candle_resumes.append(after_seq)
        return self._drain(self.candle_queue)

    def factors(self, instrument, timeframes, after_seq):
        return self._drain(self.factor_queue)


@dataclass
class Verdict:
    allowed: bool
    rule: str = ""
    reason: str = ""


class Flags:
    def __init__(self):
        self.allowed = True

    def verdict(self, slug, role, reduces_position):
        return Verdict(True) if self.allowed else Verdict(False, "guard.halted", "trading is halted")


class Positions:
    def __init__(self):
        self.open: list[OpenPosition] = []

    async def open_positions(self, slug, instrument):
        return list(self.open)

    async def net_position(self, slug, instrument):
        return sum((p.quantity for p in self.open), Decimal(0))


class Orders:
    def __init__(self, accept=True):
        self.sent = []
        self.accept = accept

    async def submit(self, draft, trace):
        self.sent.append(draft)
        return SubmitOutcome(accepted=self.accept, order_id=f"ord-{len(self.sent)}",
                             state="NEW" if self.accept else "REJECTED", reason="" if self.accept else "guard.halted")


def make_worker(strategy, role="entry", history=(), orders=None):
    market = FakeMarket(list(history))
    status = WorkerStatus(slug=strategy.slug, role=role, started=T0, params={})
    worker = StrategyWorker(harness=StrategyHarness(strategy, logging.getLogger("test")), role=role, market=market,
                            positions=Positions(), orders=orders or Orders(), flags=Flags(), status=status,
                            reconnect_seconds=0.01)
    return worker, market


def ma_cross_history():
    # 30 falling closes then a sharp rise: SMA(3) crosses above SMA(8) on the last candle.
    mids = [100.0 - 0.01 * i for i in range(30)]
    return [(i + 1, candle(i, m)) for i, m in enumerate(mids)]


async def run_until(worker, condition, timeout=5.0):
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(int(timeout / 0.01)):
            if condition():
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_entry_decides_once_candle_and_its_factors_have_arrived():
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    worker, market = make_worker(strategy, history=ma_cross_history())
    closing = candle(30, 100.5)
    await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=31, candle=closing))
    await market.factor_queue.put(market_data_pb2.StreamFactorsResponse(seq=9, factors=market_data_pb2.FactorSet(
        instrument="USD_JPY", timeframe=2, candle_start_time=closing.start_time, values={"sma_20": 1.0})))
    await run_until(worker, lambda: worker.orders.sent)
    assert market.candle_resumes == [30]  # resumes right after the warm-up history
    [draft] = worker.orders.sent
    assert draft.side == "buy" and draft.role == "entry" and not draft.reduce_only
    assert draft.client_order_id == entry_client_id("ma_cross", "USD_JPY", T0 + timedelta(minutes=30))
    assert draft.decision_time == closing_time(30)  # the order may fill only after the quote the decision saw
    assert worker.status.intents_submitted == 1 and worker.status.last_factor_seq == 9


async def test_entry_decides_without_factors_when_they_do_not_come(monkeypatch):
    monkeypatch.setattr("services.strategies.worker.FACTOR_WAIT_SECONDS", 0.05)
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    worker, market = make_worker(strategy, history=ma_cross_history())
    await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=31, candle=candle(30, 100.5)))
    await run_until(worker, lambda: worker.orders.sent)
    assert len(worker.orders.sent) == 1


async def test_flags_off_means_no_intent_and_a_counted_skip(monkeypatch):
    monkeypatch.setattr("services.strategies.worker.FACTOR_WAIT_SECONDS", 0.05)
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    worker, market = make_worker(strategy, history=ma_cross_history())
    worker.flags.allowed = False
    await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=31, candle=candle(30, 100.5)))
    await run_until(worker, lambda: worker.status.skipped_by_flags)
    assert worker.orders.sent == []
    assert worker.status.state == "PAUSED"
    assert worker.status.last_decision.reason.startswith("guard.halted")


class Exploding(Strategy):
    slug = "exploding"
    Params = type(load_strategy("ma_cross", {}).params)
    timeframes = ("M1",)

    def decide_entry(self, view):
        raise ZeroDivisionError("boom")


async def test_a_strategy_that_raises_is_counted_and_the_worker_keeps_running(monkeypatch):
    monkeypatch.setattr("services.strategies.worker.FACTOR_WAIT_SECONDS", 0.05)
    strategy = Exploding(load_strategy("ma_cross", {}).params)
    worker, market = make_worker(strategy)
    for i in range(3):
        await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=i + 1, candle=candle(i, 100.0)))
    await run_until(worker, lambda: worker.harness.errors >= 3)
    assert worker.harness.errors == 3 and "ZeroDivisionError" in worker.harness.last_error
    assert worker.orders.sent == []


async def test_exit_uses_one_id_per_position_and_a_new_attempt_after_a_refusal(monkeypatch):
    monkeypatch.setattr("services.strategies.worker.FACTOR_WAIT_SECONDS", 0.01)
    strategy = load_strategy("ma_cross", {"stop_loss_pips": "5"})
    orders = Orders(accept=False)
    worker, market = make_worker(strategy, role="exit", orders=orders)
    opened = T0 - timedelta(minutes=5)
    worker.positions.open = [OpenPosition(instrument="USD_JPY", quantity=Decimal("10000"),
                                          average_price=Decimal("101.00"), opened_time=opened)]
    for i in range(2):  # price far below the entry: stop-loss on both candles
        await market.candle_queue.put(market_data_pb2.StreamCandlesResponse(seq=i + 1, candle=candle(i, 100.0)))
    await run_until(worker, lambda: len(orders.sent) >= 2)
    first, second = orders.sent[:2]
    assert first.side == "sell" and first.reduce_only and first.quantity == Decimal("10000")
    assert first.client_order_id == exit_client_id("ma_cross", "USD_JPY", opened, 0)
    assert second.client_order_id == exit_client_id("ma_cross", "USD_JPY", opened, 1)
    assert (first.decision_time, second.decision_time) == (closing_time(0), closing_time(1))
    assert worker.status.intents_rejected == 2


def test_entry_desk_does_not_add_to_a_position_in_the_same_direction():
    class AlwaysBuy(Strategy):
        slug = "always_buy"
        Params = type(load_strategy("ma_cross", {}).params)
        timeframes = ("M1",)

        def decide_entry(self, view):
            return EntrySignal(side="buy", quantity=Decimal("1000"), reason="test")

    desk = EntryDesk(StrategyHarness(AlwaysBuy(load_strategy("ma_cross", {}).params), logging.getLogger("t")))
    from services.strategies.book import CandleBook, bar_from_proto

    book = CandleBook("USD_JPY", {"M1": 5})
    book.add_bar(bar_from_proto(candle(0, 100.0)))
    decision, draft = desk.decide(book.view(T0), T0, Decimal("1000"))
    assert draft is None and decision.action == "skip" and "already long" in decision.reason
    decision, draft = desk.decide(book.view(T0), T0, Decimal("-1000"))
    assert draft is not None and draft.side == "buy"


def test_client_ids_fit_the_order_plane_charset_and_length():
    import re

    longest = max(("micro_adaptive_revert", "wick_reversal_blend"), key=len)
    for cid in (entry_client_id(longest, "USD_JPY", T0),
                exit_client_id(longest, "BTC_JPY", T0 + timedelta(microseconds=123456), 12)):
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", cid), cid
