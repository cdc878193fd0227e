"""The ENTRY or EXIT worker of one strategy: candles and factors in, intents out.

The worker warms up from GetCandles history, then follows StreamCandles and
StreamFactors (resuming after the last seq it saw when a stream drops). A
decision is made when a candle of the strategy's decision timeframe closes, as
soon as the factors computed on that same candle have arrived too (or the next
event shows they will not). It skips decisions while the control flags say its
role may not trade; the order plane guards again, this only saves wasted intents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timezone

import grpc
from opentelemetry import trace

from quantmesh.common.v1 import common_pb2
from services.common.telemetry import context_from, current_trace_context
from services.strategies.adapters import PositionsUnavailable
from services.strategies.book import TIMEFRAME_NAMES, CandleBook, bar_from_proto
from services.strategies.desk import Decision, EntryDesk, ExitDesk, IntentDraft
from services.strategies.params import params_as_text
from services.strategies.sdk import Bar, StrategyHarness
from services.strategies.signals import NoSignals, SignalSink
from services.strategies.status import WorkerStatus
from services.strategies.tuning import Applied, Tuning, sized_entry

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

#: Seconds to wait for the factors of a decision candle before deciding without them.
FACTOR_WAIT_SECONDS = 2.0


class StrategyWorker:
    def __init__(self, *, harness: StrategyHarness, role: str, market, positions, orders, flags,
                 status: WorkerStatus, reconnect_seconds: float = 1.0,
                 on_decision: Callable[[Decision], None] | None = None, tracer=tracer,
                 signals: SignalSink | None = None, tuning: Tuning | None = None,
                 book: CandleBook | None = None) -> None:
        """`on_decision` also gets every decision (a backtest keeps them for its report); `tracer`
        opens the span of each decision (None: no span at all, for a backtest without a collector,
        where even OpenTelemetry's no-op spans cost a tenth of a decision).
        `signals` records every decision in the analysis plane; `tuning` applies the settings it
        publishes at each decision (services/strategies/tuning.py). Neither by default. `book`: a
        candle book shared with the other role's worker fed the same candles (by default its own)."""
        if role not in ("entry", "exit"):
            raise ValueError(f"role must be entry or exit, got {role!r}")
        self.harness = harness
        self.strategy = harness.strategy
        self.role = role
        self.market = market
        self.positions = positions
        self.orders = orders
        self.flags = flags
        self.status = status
        self.instrument = self.strategy.params.instrument
        self.book = book if book is not None else CandleBook(self.instrument, self.strategy.history_bars())
        self._entry = EntryDesk(harness)
        self._exit = ExitDesk(harness)
        self._reconnect = reconnect_seconds
        self._on_decision = on_decision
        self._tracer = tracer
        self.slug = harness.slug  # the strategy class's: a strategy rebuilt with tuned params keeps it
        self._span_name = f"strategy.decide {self.slug}.{role}"
        self._pending: tuple[Bar, common_pb2.TraceContext | None] | None = None
        self.signals = signals if signals is not None else NoSignals()
        self.tuning = tuning if tuning is not None else Tuning(self.strategy)

    @property
    def decision_timeframe(self) -> str:
        return self.strategy.decision_timeframe

    async def warm_up(self) -> int | None:
        """Loads history into the book; returns the candle seq to resume the stream after."""
        last_seqs = []
        for timeframe, count in self.strategy.history_bars().items():
            history = await self.market.history(self.instrument, timeframe, count)
            for seq, candle in history:
                self.book.add_bar(bar_from_proto(candle))
            if history:
                last_seqs.append(max(seq for seq, _ in history))
        # The smallest of the per-timeframe tails, so a candle that closed between two
        # history calls is replayed; the book drops the ones it already holds.
        resume = min(last_seqs) if last_seqs else 0
        log.info("warmed up", extra={"strategy": self.slug, "role": self.role, "resume_after_seq": resume,
                                      "bars": {tf: self.book.count(tf) for tf in self.book.timeframes}})
        return resume

    async def run(self, stop: asyncio.Event) -> None:
        self.status.state = "WARMING_UP"
        while not stop.is_set():
            try:
                candle_after = await self.warm_up()
                break
            except grpc.aio.AioRpcError as exc:
                self.status.state = "RECONNECTING"
                log.warning("market data not reachable for warm-up (%s); retrying", exc.code().name)
                await asyncio.sleep(self._reconnect)
        else:
            return
        self.status.last_candle_seq = candle_after or 0
        self.status.state = "RUNNING"
        events: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        timeframes = self.book.timeframes
        followers = [
            asyncio.create_task(self._follow("candle", lambda after: self.market.candles(self.instrument, timeframes, after),
                                             candle_after, events, stop)),
            asyncio.create_task(self._follow("factors", lambda after: self.market.factors(self.instrument, timeframes, after),
                                             None, events, stop)),
        ]
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getter = asyncio.create_task(events.get())
                timeout = FACTOR_WAIT_SECONDS if self._pending else None
                done, _ = await asyncio.wait({getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    if self._pending and not stop.is_set():
                        await self._decide_pending()
                    continue
                kind, event = getter.result()
                await self.on_event(kind, event)
        finally:
            stopper.cancel()
            for task in followers:
                task.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    async def _follow(self, kind: str, open_stream, after: int | None, events: asyncio.Queue, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async for event in open_stream(after):
                    await events.put((kind, event))
                    after = event.seq
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    log.warning("%s stream cannot resume after %s (%s); continuing live", kind, after, exc.details())
                    after = None
                else:
                    log.warning("%s stream dropped (%s); resuming after seq %s", kind, exc.code().name, after)
                self.status.state = "RECONNECTING"
            await asyncio.sleep(self._reconnect)

    async def on_event(self, kind: str, event) -> None:
        """One candle ("candle") or factor ("factors") stream event; decides when a decision is complete."""
        if kind == "candle":
            self.status.last_candle_seq = max(self.status.last_candle_seq, event.seq)
            await self.on_candle(bar_from_proto(event.candle), event.trace_context)
        else:
            self.status.last_factor_seq = max(self.status.last_factor_seq, event.seq)
            factors = event.factors
            await self.on_factors(TIMEFRAME_NAMES.get(factors.timeframe),
                                  factors.candle_start_time.ToDatetime(tzinfo=timezone.utc), dict(factors.values))

    # The two steps below are the worker's whole decision path; the stream events above and an
    # in-process backtest (which hands over candles and factors without protobuf) both end here.
    async def on_candle(self, bar: Bar, trace_context: common_pb2.TraceContext | None = None) -> None:
        self.status.events += 1
        if self.status.state == "RECONNECTING":
            self.status.state = "RUNNING"
        if self._pending is not None and bar.timeframe in self.book.timeframes:
            # The factors of a candle are published right after it, so a next candle means they
            # will not come: decide now, on the book as it was, before this newer bar joins it.
            await self._decide_pending()
        if not self.book.add_bar(bar) or bar.timeframe != self.decision_timeframe:
            return
        self._pending = (bar, trace_context)
        if not self.strategy.factor_specs() or self.book.factors_start(bar.timeframe) == bar.start:
            # A strategy that reads no factor never waits for them.
            await self._decide_pending()

    async def on_factors(self, timeframe: str | None, start, values) -> None:
        self.status.events += 1
        self.book.set_factors(timeframe, start, values)
        if self._pending is not None and timeframe == self.decision_timeframe and self._pending[0].start == start:
            await self._decide_pending()

    @property
    def waiting(self) -> bool:
        """Whether a decision candle waits for its factors (what `settle` would decide now)."""
        return self._pending is not None

    async def settle(self) -> None:
        """Decides a candle still waiting for factors that will not come (a lock-stepped
        driver knows when every event of a tick has arrived; the live loop waits instead)."""
        if self._pending is not None:
            await self._decide_pending()

    async def _decide_pending(self) -> None:
        bar, trace_context = self._pending
        self._pending = None
        if self._tracer is None:
            await self.decide(bar)
            return
        with self._tracer.start_as_current_span(self._span_name, context=context_from(trace_context)) as span:
            span.set_attribute("strategy.slug", self.slug)
            span.set_attribute("strategy.role", self.role)
            await self.decide(bar)

    async def decide(self, bar: Bar) -> None:
        applied = self._apply_settings()
        view = self.book.view(now=bar.end)
        self.signals.begin(view, applied)
        verdict = self.flags.verdict(self.slug, self.role, reduces_position=self.role == "exit")
        if not verdict.allowed:
            self.status.skipped_by_flags += 1
            self.status.state = "PAUSED"
            self._record(Decision(time=view.now, action="skip", reason=f"{verdict.rule}: {verdict.reason}",
                                  instrument=self.instrument))
            return
        self.status.state = "RUNNING"
        try:
            if self.role == "entry":
                position = await self.positions.net_position(self.slug, self.instrument)
                results = [(*sized_entry(*self._entry.decide(view, bar.start, position), applied), None)]
            else:
                open_positions = await self.positions.open_positions(self.slug, self.instrument)
                results = self._exit.decide(view, open_positions)
        except PositionsUnavailable as exc:
            self._record(Decision(time=view.now, action="skip", instrument=self.instrument,
                                  reason=f"positions unavailable ({exc}); no decision"))
            return
        for decision, draft, position in results:
            self._record(decision, draft)
            if draft is None:
                continue
            try:
                outcome = await self.orders.submit(draft, current_trace_context())
            except grpc.aio.AioRpcError as exc:
                self.status.intents_rejected += 1
                self.status.last_reject_reason = f"{exc.code().name}: {exc.details()}"
                log.error("intent %s not delivered: %s", draft.client_order_id, self.status.last_reject_reason)
                self.signals.refused(decision, draft, f"not delivered: {self.status.last_reject_reason}")
                continue
            self.status.intents_submitted += 1
            if not outcome.accepted:
                self.status.intents_rejected += 1
                self.status.last_reject_reason = outcome.reason
                if position is not None:
                    self._exit.refused(position)
                log.warning("intent %s refused: %s", draft.client_order_id, outcome.reason)
                self.signals.refused(decision, draft, outcome.reason)

    def _apply_settings(self) -> Applied:
        """The analysis plane's newest settings, from this decision on (a new strategy object when
        its params changed: the candle book and the positions stay)."""
        applied = self.tuning.at_decision()
        if applied.strategy is not self.strategy:
            self.strategy = self.harness.strategy = applied.strategy
            self.status.params = params_as_text(applied.strategy.params)
        self.status.settings = applied
        self.status.settings_problem = self.tuning.problem
        return applied

    def _record(self, decision: Decision, draft: IntentDraft | None = None) -> None:
        self.signals.decision(decision, draft)
        if self._on_decision is not None:
            self._on_decision(decision)
        self.status.decisions += 1
        self.status.last_decision = decision
        if decision.action in ("enter", "exit", "skip") and log.isEnabledFor(logging.INFO):  # no record to build
            log.info("decision", extra={"strategy": self.slug, "role": self.role, "action": decision.action,
                                        "reason": decision.reason, "client_order_id": decision.client_order_id,
                                        "data_time": decision.time.isoformat()})
