"""Every decision of a worker, recorded as a signal in the analysis plane (Analysis.RecordSignals).

The worker tells its `SignalSink` when a decision begins (the view and the settings it
applies), then each decision it came to (enter, exit, hold, skip) and each intent the order
plane refused. `SignalRecorder` turns them into signals: the action and its reason, the
confidence, the indicator values the strategy reports for the view, both settings versions,
the size multiplier, the decision candle's mid close and the decision's trace id.

Signal ids come from the decision: `<slug>.<e|x>.<instrument>.<decision time>.<n>`, n
counting the records of that decision. So a batch sent again after a lost answer, or a
decision made again after a restart, is stored once.

`SignalOutbox` sends them in batches from a bounded queue, in the background: a decision
never waits for the analysis plane. While analysis is away the signals wait and are sent
again; past `capacity` the oldest are dropped, counted and logged (analysis informs, it
does not guard, so trading goes on without it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from typing import Protocol

import grpc
from opentelemetry import trace

from quantmesh.analysis.v1 import analysis_pb2, analysis_pb2_grpc
from services.common.channels import open_channel
from services.common.timeutil import to_timestamp
from services.common.wire import ROLE_TO_PROTO, SIDE_TO_PROTO, decimal_text, trimmed_decimal_text
from services.strategies.desk import Decision, IntentDraft
from services.strategies.sdk import MarketView, StrategyHarness
from services.strategies.tuning import Applied

log = logging.getLogger(__name__)

ACTIONS = {"enter": analysis_pb2.SIGNAL_ACTION_ENTRY, "exit": analysis_pb2.SIGNAL_ACTION_EXIT,
           "hold": analysis_pb2.SIGNAL_ACTION_HOLD, "skip": analysis_pb2.SIGNAL_ACTION_SKIP}
MAX_REASON_CHARS = 1000
ROLE_LETTERS = {"entry": "e", "exit": "x"}  # as in the client order ids (services/strategies/desk.py)


class SignalSink(Protocol):
    enabled: bool

    def begin(self, view: MarketView, applied: Applied) -> None:
        """A decision starts on `view` under `applied` settings."""

    def decision(self, decision: Decision, draft: IntentDraft | None) -> None:
        """What it came to, with the intent it sends (if any)."""

    def refused(self, decision: Decision, draft: IntentDraft, reason: str) -> None:
        """The order plane refused (or never got) the intent of `decision`."""


class NoSignals:
    """Records nothing: a worker without an analysis plane, a backtest."""

    enabled = False

    def begin(self, view: MarketView, applied: Applied) -> None:
        pass

    def decision(self, decision: Decision, draft: IntentDraft | None) -> None:
        pass

    def refused(self, decision: Decision, draft: IntentDraft, reason: str) -> None:
        pass


def _trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class SignalRecorder:
    enabled = True

    def __init__(self, *, harness: StrategyHarness, role: str, instrument: str, outbox: "SignalOutbox") -> None:
        self._harness = harness
        self._role = role
        self._instrument = instrument
        self._outbox = outbox
        self._view: MarketView | None = None
        self._applied: Applied | None = None
        self._indicators: dict[str, float] | None = None
        self._count = 0

    def begin(self, view: MarketView, applied: Applied) -> None:
        self._view, self._applied, self._indicators, self._count = view, applied, None, 0

    def decision(self, decision: Decision, draft: IntentDraft | None) -> None:
        self._outbox.put(self._signal(ACTIONS.get(decision.action, analysis_pb2.SIGNAL_ACTION_SKIP), decision.reason,
                                      decision, draft))

    def refused(self, decision: Decision, draft: IntentDraft, reason: str) -> None:
        self._outbox.put(self._signal(analysis_pb2.SIGNAL_ACTION_REFUSED, reason, decision, draft))

    def _signal(self, action: int, reason: str, decision: Decision, draft: IntentDraft | None) -> analysis_pb2.Signal:
        view, applied = self._view, self._applied
        if self._indicators is None:  # once per decision, and only when something is recorded
            self._indicators = {k: float(v) for k, v in self._harness.indicators(view).items() if math.isfinite(v)}
        bar = view.last(self._harness.strategy.decision_timeframe)
        slug = self._harness.slug
        signal = analysis_pb2.Signal(
            signal_id=f"{slug}.{ROLE_LETTERS[self._role]}.{self._instrument}.{decision.time.strftime('%Y%m%dT%H%M%S')}."
                      f"{self._count}",
            strategy_slug=slug, role=ROLE_TO_PROTO[self._role], instrument=decision.instrument, action=action,
            reason=reason[:MAX_REASON_CHARS], indicators=self._indicators, params_version=applied.params_version,
            allocation_version=applied.allocation_version,
            size_multiplier=trimmed_decimal_text(applied.allocation.size_multiplier),
            decision_time=to_timestamp(decision.time), client_order_id=draft.client_order_id if draft else "",
            side=SIDE_TO_PROTO[draft.side] if draft else 0, quantity=decimal_text(draft.quantity) if draft else "",
            price_ref=bar.mid.close if bar is not None else 0.0, trace_id=_trace_id())
        if decision.confidence is not None:
            signal.confidence = decision.confidence
        self._count += 1
        return signal


class SignalOutbox:
    """Signals on their way to the analysis plane: batched, retried, bounded."""

    def __init__(self, address: str, *, token: str | None = None, capacity: int = 10_000, batch: int = 500,
                 linger_seconds: float = 0.2, timeout_seconds: float = 10.0) -> None:
        self._address = address
        self._token = token
        self._queue: collections.deque[analysis_pb2.Signal] = collections.deque()
        self._capacity = capacity
        self._batch = batch
        self._linger = linger_seconds
        self._timeout = timeout_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: grpc.aio.Channel | None = None
        self.sent = 0
        self.dropped = 0

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def put(self, signal: analysis_pb2.Signal) -> None:
        if len(self._queue) >= self._capacity:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("analysis is not taking signals; the oldest are dropped",
                            extra={"address": self._address, "dropped": self.dropped, "capacity": self._capacity})
        self._queue.append(signal)
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._channel = open_channel(self._address, token=self._token, traced=False)
            self._task = asyncio.create_task(self._run(), name="signal-outbox")

    async def stop(self, flush_seconds: float = 3.0) -> None:
        """Sends what waits (for at most `flush_seconds`), then stops."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError, grpc.RpcError, OSError):
                await asyncio.wait_for(self._flush(), flush_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(self._linger)  # let a decision's records travel together
            try:
                await self._flush()
                backoff = 0.2
            except Exception as exc:  # noqa: BLE001 - whatever failed, the signals wait and the outbox lives on
                log.warning("signals wait: analysis did not take them", exc_info=not isinstance(exc, grpc.RpcError),
                            extra={"address": self._address, "waiting": len(self._queue),
                                   "error": getattr(exc, "details", lambda: str(exc))()})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _flush(self) -> None:
        stub = analysis_pb2_grpc.AnalysisStub(self._channel)
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
            try:
                await stub.RecordSignals(analysis_pb2.RecordSignalsRequest(signals=batch), timeout=self._timeout)
            except BaseException:
                self._queue.extendleft(reversed(batch))  # first in line again, to be sent again
                raise
            self.sent += len(batch)


__all__ = ["NoSignals", "SignalOutbox", "SignalRecorder", "SignalSink"]
