"""`quantmesh backtest --mesh`: the same backtest through the real gRPC mesh, in lock step.

The planes run as their own processes (control; market_data fed by push; order with the
paper venue; position). The strategy's ENTRY and EXIT workers are the live
`StrategyWorker` over the live gRPC adapters, hosted in this process so that the driver
can hold the data still while they decide. One step:

1. publish the ticks up to and including the one that closes a decision-timeframe candle
   (MarketData.PublishTicks answers once they are aggregated and published);
2. read the candle and factor events those ticks produced: StreamCandles of only the
   timeframes the workers' books hold, as a live worker subscribes (on M1 data the plane's
   S5 candles, which no M1 decision reads, were four of every five messages), and
   StreamFactors up to the seq PublishTicks reported. A filtered stream cannot say when a
   step's last candle has come, so the driver counts the candles the ticks close, per
   timeframe, by the aggregator's rule (`CandleCloses`); its count over every timeframe must
   equal the candles_closed PublishTicks reports, and each candle read must lie after the
   previous step's last_candle_seq and at or before this one's, so a miscount stops the run
   rather than shift a candle into the next step;
3. wait until every order those quotes must have settled is settled (WatchOrders), its
   fills are known (WatchFills) and the position plane has applied them
   (each worker's streamed positions, Position.WatchExposure, include them);
4. hand the events to the workers in the order the market-data engine published them
   (each candle, then its factors; EXIT before ENTRY, like the in-process desks); they
   read their positions from that stream and send Order.Submit, each intent carrying
   decision_time = the time of the quote that closed the candle;
5. publish the next ticks only then.

Which quote fills an order is fixed by the data (the paper venue fills an order only at a
quote later than its decision_time), never by which process ran first, so on the same data
the trades equal the in-process backtest's. Market orders only: a resting limit order can
fill at any later quote, and step 3 would need to know when the venue has looked at each
quote, which no contract reports yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import grpc

from quantmesh.common.v1 import common_pb2
from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.backtest.inprocess import BacktestResult, BacktestSettings
from services.backtest.report import EquityPoint
from services.backtest.trades import FillRecord
from services.common.channels import open_channel
from services.common.flags import FlagsFollower
from services.common.vocabulary import TERMINAL
from services.common.wire import SIDE_FROM_PROTO, order_state_name
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import TIMEFRAMES, Timeframe
from services.market_data.server import tick_to_proto
from services.position.currency import quote_currency
from services.position.ledger import Ledger, LedgerFill, Mark
from services.common.exposure import ExposureFollower
from services.strategies.adapters import GrpcMarket, GrpcOrders, StreamedPositions, SubmitOutcome
from services.strategies.book import TIMEFRAME_NAMES, TIMEFRAME_VALUES
from services.strategies.desk import IntentDraft
from services.strategies.params import params_as_text
from services.strategies.sdk import Strategy, StrategyHarness
from services.strategies.status import WorkerStatus
from services.strategies.worker import StrategyWorker

log = logging.getLogger(__name__)

#: At most this many ticks per PublishTicks call (the plane accepts 10,000).
MAX_BATCH = 2_000


class MeshBacktestError(RuntimeError):
    """The mesh cannot carry on in lock step; the message says why and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MeshAddresses:
    control: str
    market_data: str
    order: str
    position: str


@dataclass(slots=True)
class MeshResult(BacktestResult):
    """The in-process result's fields, plus what the position plane said at the end."""

    disagreements: list[str] = field(default_factory=list)


def _state(order: order_pb2.OrderRecord) -> str:
    return order_state_name(order.state)


class OrderTracker:
    """The order plane's view of this backtest's orders and fills, from WatchOrders and WatchFills."""

    def __init__(self, stub: order_pb2_grpc.OrderStub) -> None:
        self._stub = stub
        self.orders: dict[str, order_pb2.OrderRecord] = {}
        self.fills: list[tuple[int, order_pb2.Fill]] = []
        self._filled: dict[str, Decimal] = {}
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow_orders(), name="mesh-orders"),
                       asyncio.create_task(self._follow_fills(), name="mesh-fills")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _follow_orders(self) -> None:
        async for event in self._stub.WatchOrders(order_pb2.WatchOrdersRequest(resume_after_seq=0)):
            self.orders[event.order.intent.client_order_id] = event.order
            self._changed.set()

    async def _follow_fills(self) -> None:
        async for event in self._stub.WatchFills(order_pb2.WatchFillsRequest(resume_after_seq=0)):
            fill = event.fill
            self.fills.append((event.seq, fill))
            self._filled[fill.client_order_id] = self._filled.get(fill.client_order_id, Decimal(0)) + Decimal(fill.quantity)
            self._changed.set()

    def settled(self, client_order_id: str) -> bool:
        order = self.orders.get(client_order_id)
        return (order is not None and _state(order) in TERMINAL
                and self._filled.get(client_order_id, Decimal(0)) == Decimal(order.filled_quantity or "0"))

    async def wait_until(self, ready: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not ready():
            for task in self._tasks:
                if task.done():
                    raise MeshBacktestError(f"the order plane's {task.get_name()} stream ended: "
                                            f"{task.exception() if not task.cancelled() else 'canceled'}")
            self._changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise MeshBacktestError(f"waited {timeout:g} s for {what()}; see the order plane's log")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))


class LockstepOrders:
    """GrpcOrders that remembers which orders the next quotes must settle."""

    def __init__(self, inner: GrpcOrders, working: dict[str, datetime]) -> None:
        self._inner = inner
        self._working = working

    async def submit(self, draft: IntentDraft, trace: common_pb2.TraceContext) -> SubmitOutcome:
        if draft.limit_price is not None:
            raise MeshBacktestError(
                f"{draft.slug} placed a limit order ({draft.client_order_id}); the mesh backtest steps market "
                "orders only, since a resting order can fill at any later quote. Run it without --mesh.")
        if draft.decision_time is None:
            raise MeshBacktestError(f"{draft.client_order_id} has no decision_time: the market-data plane sent a "
                                    "candle without closed_time, so its fill would depend on timing")
        outcome = await self._inner.submit(draft, trace)
        self._working[draft.client_order_id] = draft.decision_time
        return outcome


class _Stream:
    """One market-data stream of this backtest's instrument (every timeframe), from its first event."""

    def __init__(self, kind: str, call) -> None:
        self.kind = kind
        self.seq = 0
        self._call = call
        self._queue: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async for event in self._call:
                self._queue.put_nowait(event)
        except grpc.aio.AioRpcError as exc:
            self._queue.put_nowait(exc)

    async def _next(self, timeout: float, waiting_for: str):
        try:
            event = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            raise MeshBacktestError(f"the {self.kind} stream stopped before {waiting_for}") from None
        if isinstance(event, grpc.aio.AioRpcError):
            raise MeshBacktestError(f"the {self.kind} stream broke: {event.code().name} {event.details()}")
        return event

    async def read_until(self, target: int, timeout: float) -> list:
        """The events after the last one read, up to and including seq `target`."""
        events = []
        while self.seq < target:
            event = await self._next(timeout, f"seq {target}")
            events.append(event)
            self.seq = event.seq
        return events

    async def read_count(self, count: int, target: int, timeout: float) -> list:
        """The next `count` events of a filtered stream, all after the seq read up to so far and
        at or before `target`, which becomes the seq read up to."""
        events = [await self._next(timeout, f"the {count} events the step's ticks closed (up to seq {target})")
                  for _ in range(count)]
        for event in events:
            if not self.seq < event.seq <= target:
                raise MeshBacktestError(
                    f"the {self.kind} stream sent seq {event.seq} in the step of seqs {self.seq + 1}..{target}: the "
                    "driver's count of the candles the ticks closed disagrees with the market-data plane's")
        self.seq = target
        return events

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def in_published_order(candles: list, factors: list) -> list[tuple[object, object | None]]:
    """The engine publishes each closed candle and then that candle's factors (if it has any):
    pairs the two streams back into that order."""
    out: list[tuple[object, object | None]] = []
    pending = list(reversed(factors))
    for candle in candles:
        c, paired = candle.candle, None
        if pending:
            f = pending[-1].factors
            if f.timeframe == c.timeframe and f.candle_start_time == c.start_time:
                paired = pending.pop()
        out.append((candle, paired))
    if pending:
        raise MeshBacktestError(f"{len(pending)} factor events match no candle of their step; "
                                "the market-data plane published out of order")
    return out


class CandleCloses:
    """Which candles each tick closes, by the market-data aggregator's rule, without building them.

    A tick older than the newest one is late: the plane drops it and it closes nothing. Any
    other tick closes, in every timeframe, the open candle whose bucket it has left (one per
    timeframe however long the gap; an empty bucket makes no candle).
    """

    def __init__(self, timeframes=TIMEFRAMES) -> None:
        self.widths = tuple(tf.seconds for tf in timeframes)
        self._newest: datetime | None = None
        self._buckets: tuple[int, ...] | None = None

    def on_tick(self, time: datetime) -> list[int] | None:
        """None for a late tick; else the widths (seconds) of the candles this tick closes."""
        if self._newest is not None and time < self._newest:
            return None
        self._newest = time
        second = int(time.timestamp())
        buckets = tuple(second // width for width in self.widths)
        previous, self._buckets = self._buckets, buckets
        if previous is None:
            return []
        return [width for width, now, before in zip(self.widths, buckets, previous) if now != before]


class MeshBacktest:
    def __init__(self, make_strategy: Callable[[], Strategy], addresses: MeshAddresses,
                 settings: BacktestSettings = BacktestSettings(), *, step_timeout: float = 60.0) -> None:
        # One strategy instance per worker, as in the live mesh (two processes, two instances).
        self.strategies = {"exit": make_strategy(), "entry": make_strategy()}
        strategy = self.strategies["entry"]
        if strategy.params.protect_at_venue:
            raise MeshBacktestError(
                f"{strategy.slug} holds its stops at the venue (protect_at_venue): they fill at any later quote, "
                "which the mesh backtest's lockstep does not wait for. Run it without --mesh.")
        self.slug = strategy.slug
        self.instrument = strategy.params.instrument
        self.decision_timeframe = strategy.decision_timeframe
        self.width = Timeframe[self.decision_timeframe].seconds
        self.addresses = addresses
        self.settings = settings
        self.latency = timedelta(milliseconds=settings.paper.latency_ms)
        self.step_timeout = step_timeout
        self.result = MeshResult(fills=[], curve=[], decisions=[], rejected=[])
        # The position plane's books, kept here from the streamed fills: the equity curve, checked at the end.
        self.mirror = Ledger(starting_cash=settings.starting_cash,
                             currency=settings.currency or quote_currency(self.instrument),
                             calendar=settings.trading_day, financing=settings.financing)
        self._mirrored = 0
        self._working: dict[str, datetime] = {}
        self._newest: FeedTick | None = None  # the newest quote published (late ticks never are)
        # The timeframes the driver streams (set in run): the workers' books, as a live worker
        # subscribes, and the decision timeframe for the equity curve.
        self.timeframes: tuple[str, ...] = (self.decision_timeframe,)

    async def run(self, ticks: AsyncIterator[FeedTick], *,
                  on_tick: Callable[[FeedTick], None] | None = None) -> MeshResult:
        channels = {name: open_channel(address, traced=False) for name, address in
                    (("market_data", self.addresses.market_data), ("order", self.addresses.order),
                     ("position", self.addresses.position))}
        market = market_data_pb2_grpc.MarketDataStub(channels["market_data"])
        self._positions = position_pb2_grpc.PositionStub(channels["position"])
        tracker = OrderTracker(order_pb2_grpc.OrderStub(channels["order"]))
        flags = FlagsFollower(self.addresses.control)
        streams: list[_Stream] = []
        workers: dict[str, StrategyWorker] | None = None
        try:
            await flags.start()
            await flags.wait_ready(timeout=30)
            tracker.start()
            workers = {role: self._worker(role, channels, flags) for role in ("exit", "entry")}
            self.timeframes = tuple(sorted({self.decision_timeframe, *(tf for w in workers.values()
                                                                        for tf in w.book.timeframes)},
                                           key=lambda tf: Timeframe[tf].seconds))
            streams = [_Stream("candle", market.StreamCandles(market_data_pb2.StreamCandlesRequest(
                           instruments=[self.instrument], timeframes=[TIMEFRAME_VALUES[tf] for tf in self.timeframes],
                           resume_after_seq=0))),
                       _Stream("factor", market.StreamFactors(market_data_pb2.StreamFactorsRequest(
                           instruments=[self.instrument], resume_after_seq=0)))]
            for worker in workers.values():
                await worker.positions.follower.start()
                await worker.warm_up()  # a fresh mesh has no history; the live start-up path all the same
            batch: list[FeedTick] = []
            streamed = {Timeframe[tf].seconds for tf in self.timeframes}
            closes_of = CandleCloses()
            closed = {"all": 0, "streamed": 0, "late": 0}
            async for tick in ticks:
                shut = closes_of.on_tick(tick.time)
                if shut is None:  # late: the plane drops it, so it is never the newest quote
                    closed["late"] += 1
                else:
                    closed["all"] += len(shut)
                    closed["streamed"] += len(streamed.intersection(shut))
                    self._newest = tick
                closes = bool(shut) and self.width in shut
                batch.append(tick)
                if closes or len(batch) >= MAX_BATCH:
                    await self._step(batch, closed, market, streams, tracker, workers)
                    batch, closed = [], {"all": 0, "streamed": 0, "late": 0}
                if on_tick is not None:
                    on_tick(tick)
            if batch:
                await self._step(batch, closed, market, streams, tracker, workers)
            await self._check_positions()
            # The report's money is the ledger's, as in-process: the mirror holds what the position plane holds.
            self.result.account = self.mirror.account_figures(self.settings.account)
            self.result.currency = self.mirror.currency
            self.result.rejected = [(cid, f"{o.reject_rule}: {o.reason}") for cid, o in tracker.orders.items()
                                    if _state(o) == "REJECTED"]
            return self.result
        finally:
            for stream in streams:
                await stream.close()
            for worker in (workers or {}).values():
                await worker.positions.follower.stop()
            await tracker.stop()
            await flags.stop()
            for channel in channels.values():
                await channel.close()

    def _worker(self, role: str, channels, flags) -> StrategyWorker:
        strategy = self.strategies[role]
        harness = StrategyHarness(strategy, logging.getLogger(f"strategy.{strategy.slug}.{role}"))
        status = WorkerStatus(slug=strategy.slug, role=role, started=datetime.now(timezone.utc),
                              params=params_as_text(strategy.params))
        orders = LockstepOrders(GrpcOrders(channels["order"], self.settings.account), self._working)
        # Each worker follows its own positions, as a live worker process does.
        positions = StreamedPositions(ExposureFollower(
            self.addresses.position, account=self.settings.account, strategies=(strategy.slug,),
            instruments=(self.instrument,), staleness_seconds=self.step_timeout))
        return StrategyWorker(harness=harness, role=role, market=GrpcMarket(channels["market_data"]),
                              positions=positions, orders=orders, flags=flags, status=status)

    async def _step(self, batch: list[FeedTick], closed: dict[str, int], market, streams: list[_Stream],
                    tracker: OrderTracker, workers: dict[str, StrategyWorker]) -> None:
        reply = await market.PublishTicks(market_data_pb2.PublishTicksRequest(ticks=[tick_to_proto(t) for t in batch]),
                                          timeout=self.step_timeout)
        if reply.candles_closed != closed["all"] or reply.late != closed["late"]:
            raise MeshBacktestError(
                f"the market-data plane closed {reply.candles_closed} candles and dropped {reply.late} late ticks of "
                f"the {len(batch)} ending at {batch[-1].time.isoformat()}; the driver counted {closed['all']} and "
                f"{closed['late']}, so it cannot tell which candles to wait for")
        self.result.ticks += len(batch)
        candle_stream, factor_stream = streams
        candles = await candle_stream.read_count(closed["streamed"], reply.last_candle_seq, self.step_timeout)
        streamed = {TIMEFRAME_VALUES[tf] for tf in self.timeframes}
        # Factor sets are few (only the timeframes the strategy reads factors of), so that stream is
        # read whole by seq; those of a timeframe no book holds go where the live worker's filter sends them.
        factors = [f for f in await factor_stream.read_until(reply.last_factor_seq, self.step_timeout)
                   if f.factors.timeframe in streamed]
        await self._settle_orders(tracker, workers)
        for candle, factors_of_candle in in_published_order(candles, factors):
            if TIMEFRAME_NAMES[candle.candle.timeframe] == self.decision_timeframe:
                self._sample_equity(candle.candle)
            for role in ("exit", "entry"):  # the in-process desks' order
                await workers[role].on_event("candle", candle)
                if factors_of_candle is not None:
                    await workers[role].on_event("factors", factors_of_candle)
                await workers[role].settle()  # every event of this candle is in: no factors still to come

    async def _settle_orders(self, tracker: OrderTracker, workers: dict[str, StrategyWorker]) -> None:
        """Orders the published quotes must have filled or expired, their fills, and the workers' views."""
        last = self._newest.time
        due = [cid for cid, decided in self._working.items() if decided + self.latency < last]
        await tracker.wait_until(
            lambda: all(tracker.settled(cid) for cid in due), self.step_timeout,
            lambda: "orders " + ", ".join(f"{cid} ({_state(tracker.orders[cid]) if cid in tracker.orders else 'unseen'})"
                                          for cid in due if not tracker.settled(cid))
            + f" to settle after the quote at {last.isoformat()}")
        for cid in due:
            del self._working[cid]
        target = max((seq for seq, _ in tracker.fills), default=0)
        self._mirror(tracker)
        if target:
            await self._wait_position_views(target, workers)

    def _mirror(self, tracker: OrderTracker) -> None:
        for _, fill in tracker.fills[self._mirrored:]:  # WatchFills delivers in seq order
            record = FillRecord(time=fill.time.ToDatetime(tzinfo=timezone.utc), strategy=fill.strategy_slug,
                                instrument=fill.instrument, side=SIDE_FROM_PROTO[fill.side], quantity=Decimal(fill.quantity),
                                price=Decimal(fill.price), commission=Decimal(fill.commission))
            self.result.fills.append(record)
            self.mirror.apply_fill(LedgerFill(fill_id=fill.fill_id, account=fill.account, instrument=fill.instrument,
                                              strategy=fill.strategy_slug, side=record.side, quantity=record.quantity,
                                              price=record.price, commission=record.commission, time=record.time))
        self.mirror.take_bookkeeping()
        self._mirrored = len(tracker.fills)

    async def _wait_position_views(self, fill_seq: int, workers: dict[str, StrategyWorker]) -> None:
        """Until every worker's streamed positions include the fills up to `fill_seq`.

        The order plane's pre-trade waits for its own view the same way (its exposure
        catch-up, which the mesh runner sets to the step timeout), so every decision and
        every risk check of the next step sees the same fills the in-process backtest sees.
        """
        for role, worker in workers.items():
            follower = worker.positions.follower
            if not await follower.wait_for_fill_seq(fill_seq, self.step_timeout):
                seen = follower.latest.last_fill_seq if follower.latest else None
                raise MeshBacktestError(f"the {role} worker's positions include fills up to seq {seen} only; "
                                        f"waited {self.step_timeout:g} s for {fill_seq} from the position plane")

    def _sample_equity(self, candle) -> None:
        """The in-process backtest's equity sample: marked at the quote that closed the decision candle."""
        tick = self._newest  # the quote that closed the decision candle ends the batch
        self.result.decision_bars += 1
        self.mirror.apply_mark(Mark(instrument=tick.instrument, bid=tick.bid, ask=tick.ask, time=tick.time))
        self.mirror.take_bookkeeping()  # nothing to store: the mirror lives for this run only
        exposed = any(p.quantity != 0 for p in self.mirror.positions(self.settings.account, strategies=(self.slug,),
                                                                       instruments=(self.instrument,)))
        self.result.curve.append(EquityPoint(time=candle.end_time.ToDatetime(tzinfo=timezone.utc),
                                             equity=self.mirror.account_figures(self.settings.account).equity,
                                             exposed=exposed))

    async def _check_positions(self) -> None:
        """The position plane's books against the fills the order plane streamed."""
        reply = await self._positions.Snapshot(position_pb2.SnapshotRequest(account=self.settings.account,
                                                                            include_flat=True), timeout=10)
        theirs = {(p.strategy_slug, p.instrument): p for p in reply.positions}
        problems = []
        for mine in self.mirror.positions(self.settings.account):
            other = theirs.pop((mine.strategy, mine.instrument), None)
            if other is None:
                problems.append(f"{mine.strategy} {mine.instrument}: missing at the position plane")
                continue
            for name, expected, got in (("quantity", mine.quantity, Decimal(other.quantity or "0")),
                                        ("realized PnL", mine.realized_pnl, Decimal(other.realized_pnl or "0")),
                                        ("commission", mine.commission, Decimal(other.commission or "0"))):
                # Average cost divides: the two books may round a repeating decimal at a
                # different step (far below a currency unit), so compare to 1e-9.
                if abs(expected - got) > Decimal("1e-9"):
                    problems.append(f"{mine.strategy} {mine.instrument} {name}: fills say {expected}, "
                                    f"the position plane says {got}")
        problems += [f"{slug} {instrument}: only at the position plane" for (slug, instrument) in theirs
                     if Decimal(theirs[(slug, instrument)].quantity or "0") != 0]
        self.result.disagreements = problems
