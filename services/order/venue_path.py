"""The venue path: send an order, bring it to the venue's view, and never lose track of it.

- `send`: one submit through the gateway (rate budget, retries of what is safe to repeat).
  A refusal is final (REJECTED with the venue's rule). When the venue may or may not have
  the order (OutcomeUnknown), or retries ran out, the order is looked up by client id:
  found -> adopted; otherwise it stays SUBMITTED and a follow-up looks it up again on a
  schedule. It is never sent again. Only after the venue has said "no such order" for
  longer than the in-transit window is it REJECTED as lost in transit.
- `adopt`: the order moves to the venue's view (NEW, its fills, CANCELED or EXPIRED), each
  step one journal entry. A fill already recorded (by broker fill id) is skipped. An order bound
  to a trade that the venue says is filled is FILLED at what it filled (`_ends_with_its_trade`).
- executions: what the venue does on its own arrives through `apply_execution`.
- `recover`: at start, every unfinished order is resolved with the venue.

The caller holds the order's lock (services.order.locks) around `send`, `adopt` and
`cancel`; the background work here takes it itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from opentelemetry import trace

from quantmesh.common.v1 import common_pb2
from services.common.clock import Clock
from services.common.telemetry import context_from, current_trace_context, span_if_recorded
from services.common.vocabulary import IN_FLIGHT, OPEN, OrderState
from services.order.brokers.base import (Broker, BrokerAck, BrokerExecution, BrokerFill, BrokerOrder,
                                         BrokerFinancing, BrokerOverloaded, BrokerRejected, OutcomeUnknown,
                                         ProtectionOnFill, trait,
                                         RetryableBrokerError)
from services.order.journal import Journal
from services.order.locks import OrderLocks
from services.order.protection import is_bound
from services.order.records import FillRecord, FinancingRecord, OrderRecord, TraceRef
from services.order.states import require_move

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
S = OrderState


@dataclass(frozen=True, kw_only=True, slots=True)
class VenuePathSettings:
    account: str = "paper"  # the plane's account: venue financing on a trade no order of ours opened
    first_lookup_seconds: float = 1.0  # the first look-up after an unknown outcome
    max_lookup_seconds: float = 30.0  # look-ups back off up to this
    lost_in_transit_seconds: float = 120.0  # "no such order" for this long since it was sent: REJECTED
    reconcile_seconds: float = 300.0  # every working order asked of the venue; 0: at start only


class VenuePath:
    def __init__(self, *, broker: Broker, journal: Journal, locks: OrderLocks, clock: Clock, store,
                 settings: VenuePathSettings = VenuePathSettings()) -> None:
        self._broker = broker
        self._journal = journal
        self._locks = locks
        self._clock = clock
        self._store = store
        self._settings = settings
        self._followups: dict[str, asyncio.Task] = {}
        self._executions_task: asyncio.Task | None = None
        # Set by the engine: the venue group of an order (protection), and what runs after an order changed.
        self.group_for: Callable[[OrderRecord], str] = lambda order: ""
        self.on_fill_for: Callable[[OrderRecord], ProtectionOnFill | None] = lambda order: None
        self.on_trade_for: Callable[[OrderRecord], str] = lambda order: ""
        self.after_change: Callable[[OrderRecord], Awaitable[None]] | None = None
        self._reconcile_task: asyncio.Task | None = None
        self.reconciled: list[tuple[str, str, str]] = []  # (order id, our state before, the venue's after)

    @property
    def name(self) -> str:
        return self._broker.name

    @property
    def unresolved(self) -> int:
        """Orders of unknown outcome still being looked up."""
        return len(self._followups)

    async def start(self, *, recover: bool, follow_executions: bool) -> None:
        if recover:
            await self.recover()
        if follow_executions:
            self._executions_task = asyncio.create_task(self._follow_executions(), name="order-executions")
        if recover and self._settings.reconcile_seconds > 0:
            self._reconcile_task = asyncio.create_task(self._reconcile_forever(), name="order-reconciliation")

    async def stop(self) -> None:
        tasks = [*self._followups.values(),
                 *(t for t in (self._executions_task, self._reconcile_task) if t is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followups.clear()
        self._executions_task = self._reconcile_task = None

    # ---- send --------------------------------------------------------------------------------

    async def send(self, order: OrderRecord) -> OrderRecord:
        """Sends a SUBMITTED order (stored before this call: write-ahead)."""
        intent = order.intent
        if intent.trailing_stop_distance and not trait(self._broker, "trailing_stops"):
            return await self._move(order, S.REJECTED, reject_rule="venue.trailing_stop", reason=(
                f"{self._broker.name} holds no trailing stops, so the entry was not sent: drop trailing_stop_distance "
                "(trailing_stop_pips) or trade it where the venue holds them (paper, OANDA)"))
        with span_if_recorded(tracer, "broker.submit") as span:
            span.set_attribute("broker", self._broker.name)
            try:
                ack = await self._broker.submit(BrokerOrder(
                    client_order_id=intent.client_order_id, account=intent.account, instrument=intent.instrument,
                    side=intent.side, quantity=intent.quantity, order_type=intent.order_type,
                    limit_price=intent.limit_price, stop_price=intent.stop_price,
                    trail_distance=intent.trail_distance, time_in_force=intent.time_in_force, decision_time=intent.decision_time, role=intent.role,
                    reduce_only=intent.reduce_only, oco_group=self.group_for(order), on_fill=self.on_fill_for(order),
                    on_trade=self.on_trade_for(order)))
            except BrokerRejected as exc:
                return await self._move(order, S.REJECTED, reject_rule=exc.rule, reason=str(exc))
            except (OutcomeUnknown, RetryableBrokerError, BrokerOverloaded) as exc:
                return await self._resolve_now(order, exc)
        return await self.adopt(order, ack)

    async def _resolve_now(self, order: OrderRecord, error: Exception) -> OrderRecord:
        """The send's outcome is not known: ask the venue before anything else."""
        log.warning("order outcome unknown; looking it up", extra={
            "order_id": order.order_id, "client_order_id": order.intent.client_order_id, "error": str(error)})
        try:
            ack = await self._broker.lookup(order.intent.client_order_id)
        except Exception as exc:  # the venue cannot tell yet: keep asking, never resend
            log.warning("look-up failed; the order stays SUBMITTED", extra={"order_id": order.order_id,
                                                                             "error": repr(exc)})
            ack = None
        if ack is not None:
            return await self.adopt(order, ack)
        self._follow_up(order.intent.client_order_id)
        return order

    async def placed_by_venue(self, order: OrderRecord) -> OrderRecord:
        """An order the venue created itself (an entry's stop-loss on fill), stored SUBMITTED: it is
        looked up by its client id, and followed up until the venue lists it; never sent."""
        if await self._resolve_once(order):
            return await self.current(order.intent.client_order_id)
        self._follow_up(order.intent.client_order_id)
        return order

    def _follow_up(self, client_order_id: str) -> None:
        if client_order_id not in self._followups:
            task = asyncio.create_task(self._look_up_until_known(client_order_id), name=f"lookup {client_order_id}")
            self._followups[client_order_id] = task
            task.add_done_callback(lambda _: self._followups.pop(client_order_id, None))

    async def _look_up_until_known(self, client_order_id: str) -> None:
        delay = self._settings.first_lookup_seconds
        while True:
            await self._clock.sleep(delay)
            delay = min(delay * 2, self._settings.max_lookup_seconds)
            try:
                async with self._locks(client_order_id):
                    order = await self.current(client_order_id)
                    if order is None or order.state not in IN_FLIGHT:
                        return  # an execution or a retry resolved it meanwhile
                    if not await self._resolve_once(order):
                        continue
                    resolved = await self.current(client_order_id)
            except Exception:  # one failed round must not end the follow-up: the order would be forgotten
                log.exception("look-up of an order of unknown outcome failed", extra={"client_order_id": client_order_id})
                continue
            await self.changed(resolved)
            return

    async def _resolve_once(self, order: OrderRecord) -> bool:
        """One look-up of an in-flight order; True when its outcome is settled."""
        try:
            ack = await self._broker.lookup(order.intent.client_order_id)
        except Exception as exc:
            log.warning("venue cannot tell yet; the order stays SUBMITTED", extra={
                "order_id": order.order_id, "error": repr(exc)})
            return False
        if ack is not None:
            await self.adopt(order, ack)
            return True
        if order.state == S.PENDING_SUBMIT:
            return False  # the caller decides (recovery sends a never-sent order)
        waited = (self._clock.now() - order.updated_time).total_seconds()
        if waited < self._settings.lost_in_transit_seconds:
            return False
        await self._move(order, S.REJECTED, reject_rule="broker.lost_in_transit",
                         reason=f"lost in transit: the broker has had no order with this client id for "
                                f"{waited:.0f} s since it was sent")
        return True

    # ---- the venue's view ----------------------------------------------------------------------

    async def adopt(self, order: OrderRecord, ack: BrokerAck, *, cancel_reason: str = "") -> OrderRecord:
        """Brings the order to the venue's view: acknowledged, its fills, finished, canceled or expired."""
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
        recorded = self._journal.recorded_fill_ids(order.intent.client_order_id)
        for fill in ack.fills:
            if fill.broker_fill_id not in recorded:
                order = await self._record_fill(order, fill)
        if ack.state == "filled" and order.state == S.PARTIALLY_FILLED and self._ends_with_its_trade(order):
            # Every fill of the ack is recorded above; the quantity stays what was really filled.
            reason = (f"the venue finished the order at {order.filled_quantity} of {order.intent.quantity}: "
                      "the trade it was bound to had less left")
            log.info("the venue finished a bound order short of its quantity", extra={
                "order_id": order.order_id, "client_order_id": order.intent.client_order_id,
                "filled": str(order.filled_quantity), "quantity": str(order.intent.quantity)})
            order = await self._move(order, S.FILLED, reason=reason)
        if ack.state in ("canceled", "expired") and order.state in OPEN:
            target = S.CANCELED if ack.state == "canceled" else S.EXPIRED
            order = await self._move(order, target, reason=cancel_reason or ack.reason)
        return order

    def _ends_with_its_trade(self, order: OrderRecord) -> bool:
        """Whether the venue's "filled" finishes this order even short of its quantity.

        Only an order bound to a trade at a venue that protects on fill (OANDA's stop-loss, trailing
        stop and take-profit on the trade an entry opened): it closes whatever is left of the trade,
        which after a partial close is less than the entry's quantity we recorded for it, and the
        venue then calls it FILLED. Its fills come in one ORDER_FILL transaction (the adapter marks
        only the last of them "filled"; a look-up carries all of them), so once they are recorded
        nothing more can come.

        Anywhere else "filled" means the whole quantity, and a record short of it means fills still
        on their way: a poll (resting.FillTracker) gives every new fill the order's final state, and
        an exchange's list of trades (ccxt fetch_order_trades, GMO /v1/executions) can lag its order
        status. Finishing such an order on the venue's word would book the later fills on a finished
        order and take it out of reconciliation, which asks only about open orders: a missing fill
        would never be looked for again.
        """
        return is_bound(order) and trait(self._broker, "protects_on_fill")

    async def cancel(self, order: OrderRecord, reason: str) -> OrderRecord:
        ack = await self._broker.cancel(order.intent.client_order_id)
        return await self.adopt(order, ack, cancel_reason=reason)

    async def apply_execution(self, execution: BrokerExecution) -> OrderRecord | None:
        async with self._locks(execution.client_order_id):
            order = await self.current(execution.client_order_id)
            if order is None:
                log.error("execution for an order this plane never stored",
                          extra={"client_order_id": execution.client_order_id})
                return None
            ack = BrokerAck(client_order_id=execution.client_order_id, broker_order_id=execution.broker_order_id,
                            state=execution.state, reason=execution.reason,
                            fills=(execution.fill,) if execution.fill else ())
            after = await self.adopt(order, ack)
        await self.changed(after)  # outside the order's lock: it may touch other orders of the position
        return after

    async def changed(self, order: OrderRecord) -> None:
        """Runs the engine's after-change work (protection); never lets it fail the caller."""
        if self.after_change is None:
            return
        try:
            await self.after_change(order)
        except Exception:
            log.exception("after-change work failed; the next change of the position looks again",
                          extra={"order_id": order.order_id})

    async def record_financing(self, charge: BrokerFinancing) -> FinancingRecord:
        """Stores what the venue charged on a trade (once per its id), booked to the strategy whose
        entry opened the trade; a trade no order of ours opened is booked to "manual"."""
        if not charge.amount.is_finite():
            raise ValueError(f"venue financing {charge.financing_id}: amount {charge.amount} is not a number")
        opening = await self._store.fill_by_broker_id(charge.broker_fill_id) if charge.broker_fill_id else None
        if opening is None:
            log.warning("venue financing on a trade no order of this plane opened; booked to 'manual'",
                        extra={"financing_id": charge.financing_id, "broker_fill_id": charge.broker_fill_id})
        record = FinancingRecord(
            seq=0, financing_id=charge.financing_id, instrument=charge.instrument, amount=charge.amount,
            currency=charge.currency, time=charge.time, broker_fill_id=charge.broker_fill_id,
            account=opening.account if opening else self._settings.account,
            strategy_slug=opening.strategy_slug if opening else "manual")
        if await self._store.record_financing(record):
            log.info("venue financing recorded", extra={
                "financing_id": record.financing_id, "strategy": record.strategy_slug, "instrument": record.instrument,
                "amount": str(record.amount), "currency": record.currency})
        return record

    async def current(self, client_order_id: str) -> OrderRecord | None:
        """The newest stored state (call with the order's lock held)."""
        return self._journal.known(client_order_id) or await self._store.by_client_id(client_order_id)

    async def _follow_executions(self) -> None:
        async for execution in self._broker.executions():
            try:
                if isinstance(execution, BrokerFinancing):
                    await self.record_financing(execution)
                    continue
                await self.apply_execution(execution)
            except Exception:  # one bad execution must not stop the others from being recorded
                log.exception("could not apply an execution", extra={"client_order_id": execution.client_order_id})

    # ---- recovery ------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Resolves every unfinished order with the venue, by client id."""
        for stored in await self._store.unfinished():
            cid = stored.intent.client_order_id
            async with self._locks(cid):
                order = await self.current(cid)
                if order is None or order.state not in (*IN_FLIGHT, *OPEN):
                    continue
                try:
                    ack = await self._broker.lookup(cid)
                except Exception as exc:
                    log.warning("venue cannot tell about an unfinished order yet; following it up",
                                extra={"order_id": order.order_id, "error": repr(exc)})
                    self._follow_up(cid)
                    continue
                if ack is not None:
                    order = await self.adopt(order, ack)
                elif order.state == S.PENDING_SUBMIT:
                    # Stored before any send and unknown to the venue: it never left. Send it now.
                    order = await self.send(await self._move(order, S.SUBMITTED, broker=self._broker.name))
                elif order.state == S.SUBMITTED:
                    if not await self._resolve_once(order):
                        self._follow_up(cid)
                else:
                    log.error("an open order is unknown to the broker; left as it is for an operator",
                              extra={"order_id": order.order_id, "state": order.state.value})
                log.info("recovered order", extra={"order_id": order.order_id, "state": order.state.value})
            await self.changed(order)

    async def _reconcile_forever(self) -> None:
        while True:
            await self._clock.sleep(self._settings.reconcile_seconds)
            try:
                await self.reconcile_orders()
            except Exception:  # the venue is away: the next round asks again
                log.exception("order reconciliation failed; retried at the next round")

    async def reconcile_orders(self) -> list[tuple[str, str, str]]:
        """Asks the venue about every open order and takes its word: fills or cancels it reports
        that never reached us (a missed execution) are booked. Returns what changed."""
        changed = []
        for stored in self._journal.working_orders():
            if stored.state not in OPEN:
                continue
            cid = stored.intent.client_order_id
            async with self._locks(cid):
                order = await self.current(cid)
                if order is None or order.state not in OPEN:
                    continue
                ack = await self._broker.lookup(cid)
                if ack is None:
                    log.error("reconciliation: an open order is unknown to the venue; left for an operator",
                              extra={"order_id": order.order_id, "client_order_id": cid})
                    continue
                after = await self.adopt(order, ack)
            if (after.state, after.filled_quantity) != (order.state, order.filled_quantity):
                changed.append((order.order_id, order.state.value, after.state.value))
                log.warning("reconciliation: the venue knew more about an order", extra={
                    "order_id": order.order_id, "before": order.state.value, "after": after.state.value,
                    "filled_before": str(order.filled_quantity), "filled_after": str(after.filled_quantity)})
                await self.changed(after)
        self.reconciled.extend(changed)
        return changed

    # ---- journal steps ---------------------------------------------------------------------------

    async def _move(self, order: OrderRecord, target: OrderState, **fields) -> OrderRecord:
        require_move(order.state, target)
        updated = order.with_changes(state=target, updated_time=self._clock.now(), **fields)
        return await self._journal.move(updated, trace_ref())

    async def _record_fill(self, order: OrderRecord, fill: BrokerFill) -> OrderRecord:
        # No traceparent: context_from would give the current context, which None means as well.
        parent = context_from(common_pb2.TraceContext(traceparent=order.intent.traceparent,
                                                      tracestate=order.intent.tracestate)) \
            if order.intent.traceparent else None
        with span_if_recorded(tracer, "order.fill", context=parent):
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
            intent = order.intent
            record = FillRecord(seq=0, order_id=order.order_id, client_order_id=intent.client_order_id,
                                strategy_slug=intent.strategy_slug, account=intent.account,
                                instrument=intent.instrument, side=intent.side, quantity=fill.quantity,
                                price=fill.price, commission=fill.commission, time=fill.time,
                                broker_fill_id=fill.broker_fill_id)
            stored = await self._journal.record_fill(record, updated, trace_ref())
            return order if stored is None else updated


def trace_ref() -> TraceRef:
    if trace.get_current_span().get_span_context() == trace.INVALID_SPAN_CONTEXT:
        return NO_TRACE  # what the propagator would write: nothing (every entry of a backtest)
    tc = current_trace_context()
    return TraceRef(tc.traceparent, tc.tracestate)


NO_TRACE = TraceRef()


__all__ = ["VenuePath", "VenuePathSettings", "trace_ref"]
