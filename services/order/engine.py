"""The order engine: intent in, order out, every step written down before the next.

Flow of `submit`: idempotency (a per-client-id lock in memory, a unique constraint
in the store) -> guard (control flags) -> risk -> store PENDING_SUBMIT (write-ahead:
the order exists before any broker sees it) -> SUBMITTED -> broker.submit -> NEW ->
fills from the broker's executions stream -> PARTIALLY_FILLED / FILLED.

A refusal is an order too: stored REJECTED with the rule and a sentence with the
numbers, so a retry of the same client id gets the same answer. At start, `recover`
asks the broker about every unfinished order by client id, so an order is never
forgotten and never sent twice.

The engine only talks to ports (store, broker, flags, positions, clock); the gRPC
servicer and a backtest drive the same code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from opentelemetry import trace

from quantmesh.common.v1 import common_pb2
from services.common.clock import Clock
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.streams import Broadcaster
from services.common.telemetry import context_from, current_trace_context
from services.order.brokers.base import (Broker, BrokerAck, BrokerFill, BrokerOrder, BrokerOverloaded,
                                         BrokerRejected, RetryableBrokerError)
from services.order.intents import Intent
from services.order.positions import OwnBook, PositionsPort, PositionsUnavailable
from services.order.records import FillEvent, FillRecord, OrderEvent, OrderRecord, TraceRef, number_of
from services.order.repository import EventBackfill, OrderStore
from services.order.risk import Exposure, OrderRateLimiter, RiskLimits, RiskVerdict, check_order, reduces
from services.order.states import IN_FLIGHT, OPEN, TERMINAL, OrderState, require_move

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
S = OrderState

#: Test-only switch (QUANTMESH_FAULT): SIGKILL right after the broker accepted an order,
#: before the acknowledgement is stored, to prove recovery.
CRASH_AFTER_BROKER_SUBMIT = "crash_after_broker_submit"


class FlagsPort(Protocol):
    """The control flags as the guard needs them (services.common.flags.FlagsFollower fits)."""

    def verdict(self, slug: str, role: str, reduces_position: bool) -> Any:
        """An object with `allowed`, `rule` and `reason`."""


def refusal_sentence(order: OrderRecord) -> str:
    return f"order {order.order_id} ({order.intent.client_order_id}) was rejected by {order.reject_rule}: {order.reason}"


class OrderEngine:
    def __init__(self, *, store: OrderStore, broker: Broker, flags: FlagsPort, positions: PositionsPort,
                 limits: RiskLimits, clock: Clock, book: OwnBook | None = None, positions_timeout: float = 2.0, fault: str | None = None,
                 crash: Callable[[], None] | None = None) -> None:
        self._store = store
        self._broker = broker
        self._flags = flags
        self._positions = positions
        self._limits = limits
        self._clock = clock
        self._positions_timeout = positions_timeout
        self._fault = fault
        self._crash = crash or (lambda: os.kill(os.getpid(), signal.SIGKILL))
        self._rate = OrderRateLimiter(limits.max_orders_per_second, clock)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._write_lock = asyncio.Lock()
        self._executions_task: asyncio.Task | None = None
        self.book = book if book is not None else OwnBook()
        self.order_events: Broadcaster[OrderEvent] = Broadcaster(name="order events")
        self.fill_events: Broadcaster[FillEvent] = Broadcaster(name="fills")

    @property
    def broker_name(self) -> str:
        return self._broker.name

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, *, recover: bool = True, follow_executions: bool = True) -> None:
        """Loads seqs and the own book, resolves unfinished orders, then follows executions.

        A backtest passes follow_executions=False and feeds `apply_execution` itself, so the
        order of events comes from the data, not from task scheduling.
        """
        last_event, last_fill = await self._store.last_seqs()
        self.order_events = Broadcaster(name="order events", last_seq=last_event,
                                        backfill=EventBackfill(self._store.oldest_event_seq, self._store.order_events))
        self.fill_events = Broadcaster(name="fills", last_seq=last_fill,
                                       backfill=EventBackfill(self._store.oldest_fill_seq, self._store.fill_events))
        self.book.reset(await self._store.net_positions())
        if recover:
            await self.recover()
        if follow_executions:
            self._executions_task = asyncio.create_task(self._follow_executions(), name="order-executions")

    async def stop(self) -> None:
        if self._executions_task is not None:
            self._executions_task.cancel()
            try:
                await self._executions_task
            except asyncio.CancelledError:
                pass
        self.order_events.close()
        self.fill_events.close()

    # ---- submit ----------------------------------------------------------------------------

    async def submit(self, intent: Intent, actor: str = "") -> tuple[OrderRecord, bool]:
        """The order for this intent and whether it existed before (a retry)."""
        with tracer.start_as_current_span("order.submit", context=_submit_parent(intent)) as span:
            span.set_attribute("order.client_order_id", intent.client_order_id)
            span.set_attribute("order.strategy", intent.strategy_slug)
            async with self._client_lock(intent.client_order_id):
                existing = await self._store.by_client_id(intent.client_order_id)
                if existing is not None:
                    return existing, True
                order, duplicate = await self._submit_new(intent, actor)
                span.set_attribute("order.state", order.state.value)
                return order, duplicate

    async def _submit_new(self, intent: Intent, actor: str) -> tuple[OrderRecord, bool]:
        own = self.book.strategy(intent.account, intent.strategy_slug, intent.instrument)
        reducing = reduces(own, intent.signed_quantity)
        if intent.reduce_only and not reducing:
            return await self._reject(intent, "risk.reduce_only",
                                      f"reduce_only {intent.side} {intent.quantity} would not reduce strategy "
                                      f"{intent.strategy_slug} position {own} in {intent.instrument}")
        guard = self._flags.verdict(intent.strategy_slug, intent.role, reducing)
        if not guard.allowed:
            return await self._reject(intent, guard.rule, guard.reason)
        exposure = await self._exposure(intent, reducing)
        if isinstance(exposure, RiskVerdict):
            return await self._reject(intent, exposure.rule, exposure.reason)
        verdict = check_order(intent, exposure, self._limits, reducing=reducing)
        if not verdict.allowed:
            return await self._reject(intent, verdict.rule, verdict.reason)
        verdict = self._rate.take(intent.strategy_slug)
        if not verdict.allowed:
            return await self._reject(intent, verdict.rule, verdict.reason)
        order = await self._insert(intent, S.PENDING_SUBMIT)
        if order is None:  # another writer stored this client id first: theirs is the order
            return await self._store.by_client_id(intent.client_order_id), True
        log.info("order accepted", extra={"order_id": order.order_id, "client_order_id": intent.client_order_id,
                                          "actor": actor})
        return await self._send(order), False

    async def _send(self, order: OrderRecord) -> OrderRecord:
        order = await self._move(order, S.SUBMITTED, broker=self._broker.name)
        intent = order.intent
        with tracer.start_as_current_span("broker.submit") as span:
            span.set_attribute("broker", self._broker.name)
            try:
                ack = await self._broker.submit(BrokerOrder(
                    client_order_id=intent.client_order_id, account=intent.account, instrument=intent.instrument,
                    side=intent.side, quantity=intent.quantity, order_type=intent.order_type,
                    limit_price=intent.limit_price, stop_price=intent.stop_price,
                    time_in_force=intent.time_in_force, decision_time=intent.decision_time))
            except BrokerRejected as exc:
                return await self._move(order, S.REJECTED, reject_rule="broker.rejected", reason=str(exc))
            except (RetryableBrokerError, BrokerOverloaded) as exc:
                return await self._after_failed_send(order, exc)
        if self._fault == CRASH_AFTER_BROKER_SUBMIT:
            log.warning("QUANTMESH_FAULT=crash_after_broker_submit: killing the process before storing the ack")
            self._crash()
        return await self._adopt(order, ack)

    async def _after_failed_send(self, order: OrderRecord, error: Exception) -> OrderRecord:
        """Retries are spent. Ask the venue: only a definite "no such order" makes it REJECTED."""
        try:
            ack = await self._broker.lookup(order.intent.client_order_id)
        except Exception:  # the venue is unreachable: stay SUBMITTED; recovery asks again
            log.warning("broker unreachable; order stays SUBMITTED", extra={"order_id": order.order_id})
            return order
        if ack is not None:
            return await self._adopt(order, ack)
        return await self._move(order, S.REJECTED, reject_rule="broker.unavailable",
                                reason=f"the broker did not take the order after retries: {error}")

    async def _exposure(self, intent: Intent, reducing: bool) -> Exposure | RiskVerdict:
        p, account = self._positions, intent.account
        try:
            strategy, instrument, drawdown, losses = await asyncio.wait_for(asyncio.gather(
                p.strategy_position(account, intent.strategy_slug, intent.instrument),
                p.instrument_position(account, intent.instrument),
                p.account_drawdown_fraction(account),
                p.consecutive_losses(account, intent.strategy_slug)), self._positions_timeout)
            return Exposure(strategy_position=strategy, instrument_position=instrument,
                            drawdown_fraction=drawdown, consecutive_losses=losses)
        except (PositionsUnavailable, asyncio.TimeoutError) as exc:
            if reducing:  # the own book proves this order reduces: let the strategy get out
                return Exposure(strategy_position=self.book.strategy(account, intent.strategy_slug, intent.instrument),
                                instrument_position=self.book.instrument(account, intent.instrument),
                                drawdown_fraction=Decimal(0), consecutive_losses=0)
            why = str(exc) or "no answer within the timeout"
            return RiskVerdict(False, "risk.positions_unavailable",
                               f"the position plane cannot be reached ({why}); entries are refused until it "
                               "answers, orders that reduce the strategy's position still pass")

    async def _reject(self, intent: Intent, rule: str, reason: str) -> tuple[OrderRecord, bool]:
        order = await self._insert(intent, S.REJECTED, reject_rule=rule, reason=reason)
        if order is None:
            return await self._store.by_client_id(intent.client_order_id), True
        log.info("order rejected", extra={"order_id": order.order_id, "rule": rule, "reason": reason})
        return order, False

    # ---- cancel ----------------------------------------------------------------------------

    async def cancel(self, *, order_id: str = "", client_order_id: str = "", reason: str = "") -> OrderRecord:
        order = await self.get(order_id=order_id, client_order_id=client_order_id)
        async with self._client_lock(order.intent.client_order_id):
            order = await self._store.by_number(order.number)
            if order.state in TERMINAL:
                raise FailedPrecondition(f"order {order.order_id} is {order.state.value}; "
                                         "only open orders can be canceled")
            if order.state in IN_FLIGHT:
                raise FailedPrecondition(f"order {order.order_id} is {order.state.value}: the broker has not "
                                         "acknowledged it yet; cancel it once it is NEW")
            ack = await self._broker.cancel(order.intent.client_order_id)
            return await self._adopt(order, ack, cancel_reason=reason or "canceled on request")

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, *, order_id: str = "", client_order_id: str = "") -> OrderRecord:
        if order_id:
            number = number_of(order_id)
            order = None if number is None else await self._store.by_number(number)
            if order is None:
                raise NotFound(f"no order with order_id {order_id!r} (order ids look like ord-000000000042)")
        elif client_order_id:
            order = await self._store.by_client_id(client_order_id)
            if order is None:
                raise NotFound(f"no order with client_order_id {client_order_id!r}")
        else:
            raise InvalidArgument("give order_id or client_order_id")
        return order

    async def fills_of(self, order: OrderRecord) -> list[FillRecord]:
        return await self._store.fills_of(order.number)

    async def list_orders(self, **filters) -> list[OrderRecord]:
        return await self._store.list_orders(**filters)

    # ---- recovery and executions -----------------------------------------------------------

    async def recover(self) -> None:
        """Resolves every unfinished order with the broker, by client id."""
        for order in await self._store.unfinished():
            cid = order.intent.client_order_id
            async with self._client_lock(cid):
                order = await self._store.by_number(order.number)
                ack = await self._broker.lookup(cid)
                if ack is not None:
                    order = await self._adopt(order, ack)
                elif order.state == S.PENDING_SUBMIT:
                    # The venue said it does not have it, so it was never sent: send it now.
                    order = await self._send(order)
                elif order.state == S.SUBMITTED:
                    order = await self._move(order, S.REJECTED, reject_rule="broker.lost_in_transit",
                                             reason="lost in transit: the broker has no order with this client id")
                else:
                    log.error("an open order is unknown to the broker; left as it is for an operator",
                              extra={"order_id": order.order_id, "state": order.state.value})
                log.info("recovered order", extra={"order_id": order.order_id, "state": order.state.value})

    async def _follow_executions(self) -> None:
        async for execution in self._broker.executions():
            try:
                await self.apply_execution(execution)
            except Exception:  # one bad execution must not stop the others from being recorded
                log.exception("could not apply an execution", extra={"client_order_id": execution.client_order_id})

    async def apply_execution(self, execution) -> OrderRecord | None:
        async with self._client_lock(execution.client_order_id):
            order = await self._store.by_client_id(execution.client_order_id)
            if order is None:
                log.error("execution for an order this plane never stored",
                          extra={"client_order_id": execution.client_order_id})
                return None
            ack = BrokerAck(client_order_id=execution.client_order_id, broker_order_id=execution.broker_order_id,
                            state=execution.state, reason=execution.reason,
                            fills=(execution.fill,) if execution.fill else ())
            return await self._adopt(order, ack)

    async def _adopt(self, order: OrderRecord, ack: BrokerAck, *, cancel_reason: str = "") -> OrderRecord:
        """Brings the order to the venue's view: acknowledged, its fills, canceled or expired."""
        if ack.state == "rejected":
            if order.state in IN_FLIGHT:
                if order.state == S.PENDING_SUBMIT:
                    order = await self._move(order, S.SUBMITTED, broker=self._broker.name)
                return await self._move(order, S.REJECTED, reject_rule="broker.rejected", reason=ack.reason)
            return order
        if order.state == S.PENDING_SUBMIT:
            order = await self._move(order, S.SUBMITTED, broker=self._broker.name)
        if order.state == S.SUBMITTED:
            order = await self._move(order, S.NEW, broker_order_id=ack.broker_order_id)
        for fill in ack.fills:
            order = await self._record_fill(order, fill)
        if ack.state in ("canceled", "expired") and order.state in OPEN:
            target = S.CANCELED if ack.state == "canceled" else S.EXPIRED
            order = await self._move(order, target, reason=cancel_reason or ack.reason)
        return order

    async def _record_fill(self, order: OrderRecord, fill: BrokerFill) -> OrderRecord:
        parent = context_from(common_pb2.TraceContext(traceparent=order.intent.traceparent,
                                                      tracestate=order.intent.tracestate))
        with tracer.start_as_current_span("order.fill", context=parent):
            filled = order.filled_quantity + fill.quantity
            previous = order.average_fill_price or Decimal(0)
            average = (previous * order.filled_quantity + fill.price * fill.quantity) / filled
            state = order.state
            if order.state in OPEN:
                state = S.FILLED if filled >= order.intent.quantity else S.PARTIALLY_FILLED
                require_move(order.state, state)
            else:  # money moved on a finished order (a venue race): record the fill, keep the state
                log.error("fill for a finished order", extra={"order_id": order.order_id})
            updated = order.with_changes(state=state, filled_quantity=filled, average_fill_price=average,
                                         commission=order.commission + fill.commission,
                                         updated_time=self._clock.now())
            trace_ref = _trace_ref()
            intent = order.intent
            async with self._write_lock:
                fill_record = FillRecord(
                    seq=self.fill_events.last_seq + 1, order_id=order.order_id,
                    client_order_id=intent.client_order_id, strategy_slug=intent.strategy_slug,
                    account=intent.account, instrument=intent.instrument, side=intent.side, quantity=fill.quantity,
                    price=fill.price, commission=fill.commission, time=fill.time, broker_fill_id=fill.broker_fill_id)
                event_seq = self.order_events.last_seq + 1
                if not await self._store.record_fill(fill_record, updated, event_seq, trace_ref):
                    return order  # this execution was recorded before (a replay after restart)
                self.book.apply(intent.account, intent.strategy_slug, intent.instrument, fill_record.signed_quantity)
                self.order_events.publish(OrderEvent(updated, trace_ref), seq=event_seq)
                self.fill_events.publish(FillEvent(fill_record, trace_ref), seq=fill_record.seq)
            return updated

    # ---- writes ----------------------------------------------------------------------------

    async def _insert(self, intent: Intent, state: OrderState, **fields) -> OrderRecord | None:
        now = self._clock.now()
        draft = OrderRecord(number=0, intent=intent, state=state, created_time=now, updated_time=now, **fields)
        trace_ref = _trace_ref()
        async with self._write_lock:
            seq = self.order_events.last_seq + 1
            order = await self._store.insert_order(draft, seq, trace_ref)
            if order is not None:
                self.order_events.publish(OrderEvent(order, trace_ref), seq=seq)
            return order

    async def _move(self, order: OrderRecord, target: OrderState, **fields) -> OrderRecord:
        require_move(order.state, target)
        updated = order.with_changes(state=target, updated_time=self._clock.now(), **fields)
        trace_ref = _trace_ref()
        async with self._write_lock:
            seq = self.order_events.last_seq + 1
            await self._store.update_order(updated, seq, trace_ref)
            self.order_events.publish(OrderEvent(updated, trace_ref), seq=seq)
        return updated

    def _client_lock(self, client_order_id: str) -> "_ClientLock":
        return _ClientLock(self._locks, client_order_id)


class _ClientLock:
    """One asyncio.Lock per client id while anyone uses it, then forgotten (no unbounded growth)."""

    def __init__(self, locks: dict[str, tuple[asyncio.Lock, int]], key: str) -> None:
        self._locks = locks
        self._key = key

    async def __aenter__(self) -> None:
        lock, users = self._locks.get(self._key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[self._key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:  # cancelled while waiting: give the slot back
            self._forget(release=False)
            raise

    def _forget(self, *, release: bool) -> None:
        lock, users = self._locks[self._key]
        if release:
            lock.release()
        if users <= 1:
            del self._locks[self._key]
        else:
            self._locks[self._key] = (lock, users - 1)

    async def __aexit__(self, *exc) -> None:
        self._forget(release=True)


def _submit_parent(intent: Intent):
    """The Submit server span when it already continues the intent's trace, else the intent's context.

    Over gRPC the server span is the decision's grandchild (joined through the call's
    metadata), so nesting under it gives one tree: Submit -> order.submit -> broker.submit.
    A caller that sent no trace metadata (grpcurl, a backtest) still joins the decision
    through the trace context carried in the intent.
    """
    parent = context_from(common_pb2.TraceContext(traceparent=intent.traceparent, tracestate=intent.tracestate))
    current = trace.get_current_span().get_span_context()
    wanted = trace.get_current_span(parent).get_span_context()
    if current.is_valid and (not wanted.is_valid or current.trace_id == wanted.trace_id):
        return None  # the current context
    return parent


def _trace_ref() -> TraceRef:
    tc = current_trace_context()
    return TraceRef(tc.traceparent, tc.tracestate)


__all__ = ["OrderEngine", "FlagsPort", "refusal_sentence", "CRASH_AFTER_BROKER_SUBMIT"]
