"""The order engine: intent in, order out, split by role as NautilusTrader splits its own.

- pre-trade (services/order/pretrade.py): the guard and the risk rules give a verdict from
  local state: no RPC, no database read;
- the journal (services/order/journal.py): the single writer of orders, events and fills,
  group commit, seqs, publish after the commit;
- the venue path (services/order/venue_path.py): send, retry what is safe, look up what
  is unknown, follow executions, recover at start.

Flow of `submit`: the verdict; a refusal is stored REJECTED with the rule and a sentence
(a retry of the same client id gets the same answer); an accepted intent is stored
PENDING_SUBMIT and SUBMITTED in one commit (write-ahead: the order exists before any
venue sees it), then sent; the venue's answer moves it to NEW (or REJECTED), and fills
move it on. The client id is the idempotency key: a Submit of an id this process is
still working on waits for that work; an id it remembers gets the stored order; an id
stored before (another process, before a restart) is refused by the unique key and
answered with the stored order.

Every submit and cancel runs as its own task that the caller only waits for, so a caller
that goes away (deadline, cancel, disconnect) never interrupts it half-way: an order that
reached the store finishes its steps, and a retry of the same id gets the result. A submit
starts at once (services/common/eager.py): one that never waits (an in-memory store, the
in-process backtest) is done before a task would have been made.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from opentelemetry import trace

from quantmesh.common.v1 import common_pb2
from services.common.audit import AuditRecord, MemoryAudit
from services.common.clock import Clock
from services.common.eager import start_eagerly
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.telemetry import context_from, span_if_recorded
from services.common.vocabulary import IN_FLIGHT, OPEN, TERMINAL, OrderState, OrderType, Side, StrategyRole, TimeInForce
from services.order.brokers.base import Broker, trait
from services.order.exposure import ExposureSource
from services.order.intents import Intent
from services.order.journal import Journal, JournalHalted, JournalSettings
from services.order.locks import OrderLocks
from services.order.positions import OwnBook
from services.order.pretrade import PreTrade
from services.order.protection import Protection, asks_protection
from services.order.records import FillRecord, FinancingRecord, OrderRecord, number_of
from services.order.repository import OrderStore
from services.order.risk import RiskLimits
from services.order.venue_path import VenuePath, VenuePathSettings, trace_ref

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)
S = OrderState
T = TypeVar("T")


class FlagsPort(Protocol):
    """The control flags as the guard needs them (services.common.flags.FlagsFollower fits)."""

    def verdict(self, slug: str, role: str, reduces_position: bool) -> Any:
        """An object with `allowed`, `rule` and `reason`."""


def refusal_sentence(order: OrderRecord) -> str:
    return f"order {order.order_id} ({order.intent.client_order_id}) was rejected by {order.reject_rule}: {order.reason}"


class OrderEngine:
    def __init__(self, *, store: OrderStore, journal: Journal, pretrade: PreTrade, venue: VenuePath,
                 locks: OrderLocks, clock: Clock, book: OwnBook, audit=None,
                 max_submit_delay: timedelta = timedelta(seconds=10)) -> None:
        self._store = store
        self.journal = journal
        self.pretrade = pretrade
        self.venue = venue
        self._locks = locks
        self._clock = clock
        self.book = book
        self.audit = audit if audit is not None else MemoryAudit()
        self._max_submit_delay = max_submit_delay
        self._flows: dict[str, asyncio.Future] = {}

    @property
    def broker_name(self) -> str:
        return self.venue.name

    @property
    def order_events(self):
        return self.journal.order_events

    @property
    def fill_events(self):
        return self.journal.fill_events

    @property
    def problem(self) -> str | None:
        """Why the plane does not take new orders, or None while it does."""
        return self.journal.problem

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, *, recover: bool = True, follow_executions: bool = True) -> None:
        """Opens the journal (seqs, working orders), loads the own book, resolves unfinished orders,
        then follows executions. A backtest passes follow_executions=False and feeds
        `apply_execution` itself, so the order of events comes from the data."""
        await self.journal.open()
        self.book.reset(await self._store.net_positions())
        await self.venue.start(recover=recover, follow_executions=follow_executions)

    async def stop(self) -> None:
        """Lets running submits and cancels finish, then stops the venue path and the writer."""
        if self._flows:
            await asyncio.gather(*self._flows.values(), return_exceptions=True)
        await self.venue.stop()
        await self.journal.close()

    # ---- submit ----------------------------------------------------------------------------

    async def submit(self, intent: Intent, actor: str = "", *, role: str = "",
                     operator_exit: bool = False) -> tuple[OrderRecord, bool]:
        """The order for this intent and whether it existed before (a retry).

        `operator_exit`: an operator's flatten order (passes the guard, must reduce)."""
        cid = intent.client_order_id
        flow = self._flows.get(cid)
        if flow is not None:  # the same id is being worked on: its answer is ours
            order, _ = await asyncio.shield(flow)
            return order, True
        known = self.journal.known(cid)
        if known is not None:
            return known, True
        return await self._detached(cid, self._submit(intent, Actor(actor, role), operator_exit))

    async def _submit(self, intent: Intent, actor: "Actor", operator_exit: bool) -> tuple[OrderRecord, bool]:
        with span_if_recorded(tracer, "order.submit", context=_submit_parent(intent)) as span:
            span.set_attribute("order.client_order_id", intent.client_order_id)
            span.set_attribute("order.strategy", intent.strategy_slug)
            async with self._locks(intent.client_order_id):
                order, duplicate = await self._submit_new(intent, actor, operator_exit)
            span.set_attribute("order.state", order.state.value)
            if not duplicate and order.filled_quantity > 0 and not operator_exit:
                # Filled at once (some venues answer with the fill): protect the position now. Not for
                # protection's own orders, which it is placing under the position's lock.
                await self.venue.changed(order)
            return order, duplicate

    async def _submit_new(self, intent: Intent, actor: "Actor", operator_exit: bool) -> tuple[OrderRecord, bool]:
        if self.journal.problem is not None:
            raise FailedPrecondition(f"the order plane is not taking new orders: {self.journal.problem}")
        started = self._clock.now()
        verdict = await self.pretrade.verdict(intent, recorded_fill_seq=self.journal.last_fill_seq,
                                              operator_exit=operator_exit)
        draft = OrderRecord(number=0, intent=intent, state=S.PENDING_SUBMIT, created_time=started,
                            updated_time=started)
        try:
            if not verdict.allowed:
                refused = draft.with_changes(state=S.REJECTED, reject_rule=verdict.rule, reason=verdict.reason)
                record = AuditRecord(event="order_refused", actor=actor.name, role=actor.role,
                                     reason=f"{verdict.rule}: {verdict.reason}", strategy_slug=intent.strategy_slug,
                                     subject=intent.client_order_id, new_value=S.REJECTED.value, time=started)
                order = await self.journal.new_order([refused], trace_ref(), audit=self.audit.row(record))
                if order is not None:
                    log.info("order rejected", extra={"order_id": order.order_id, "rule": verdict.rule,
                                                      "reason": verdict.reason, "actor": actor.name})
            else:
                submitted = draft.with_changes(state=S.SUBMITTED, broker=self.venue.name)
                order = await self.journal.new_order([draft, submitted], trace_ref())
        except JournalHalted as exc:
            raise FailedPrecondition(f"the order plane is not taking new orders: {exc}") from None
        if order is None:  # stored before (another process, or before a restart): that is the order
            return await self.venue.current(intent.client_order_id), True
        if order.state == S.REJECTED:
            return order, False
        log.info("order accepted", extra={"order_id": order.order_id, "client_order_id": intent.client_order_id,
                                          "actor": actor.name})
        delay = self._clock.now() - started
        if delay > self._max_submit_delay:
            # Stored, but so late (the database was away) that the decision behind it is stale.
            late = order.with_changes(state=S.REJECTED, updated_time=self._clock.now(), reject_rule="order.delayed",
                                      reason=f"stored {delay.total_seconds():.1f} s after it arrived, beyond "
                                             f"{self._max_submit_delay.total_seconds():g} s: not sent")
            return await self.journal.move(late, trace_ref()), False
        return await self.venue.send(order), False

    async def record_placed_by_venue(self, intent: Intent) -> OrderRecord:
        """Records an order the venue created itself (an entry's stop-loss on fill, under the client
        id the entry gave it) and looks it up. No pre-trade verdict: the venue holds it already."""
        cid = intent.client_order_id
        async with self._locks(cid):
            known = self.journal.known(cid) or await self.venue.current(cid)
            if known is not None:
                return known
            now = self._clock.now()
            draft = OrderRecord(number=0, intent=intent, state=S.PENDING_SUBMIT, created_time=now, updated_time=now)
            try:
                order = await self.journal.new_order(
                    [draft, draft.with_changes(state=S.SUBMITTED, broker=self.venue.name)], trace_ref())
            except JournalHalted as exc:
                raise FailedPrecondition(f"the order plane is not recording orders: {exc}") from None
            if order is None:
                return await self.venue.current(cid)
            log.info("order placed by the venue recorded", extra={"order_id": order.order_id, "client_order_id": cid})
            return await self.venue.placed_by_venue(order)

    async def _detached(self, cid: str, work: Coroutine[Any, Any, T]) -> T:
        """Runs `work` as its own task; the caller's cancellation stops the waiting, not the work.

        Started at once (services/common/eager.py): work that never waits (an in-memory store
        written at once, the in-process backtest) finishes without a task or a turn of the loop."""
        flow = start_eagerly(work)
        if flow.done():
            self._forget_flow(cid, flow)  # what the done callback would do, with no one else in between
            return flow.result()
        self._flows[cid] = flow
        flow.add_done_callback(lambda done: self._forget_flow(cid, done))
        return await asyncio.shield(flow)

    def _forget_flow(self, cid: str, flow: asyncio.Future) -> None:
        if self._flows.get(cid) is flow:
            del self._flows[cid]
        if not flow.cancelled() and flow.exception() is not None and not isinstance(
                flow.exception(), (FailedPrecondition, InvalidArgument, NotFound)):
            log.error("an order flow failed", exc_info=flow.exception(), extra={"client_order_id": cid})

    # ---- cancel ----------------------------------------------------------------------------

    async def cancel(self, *, order_id: str = "", client_order_id: str = "", reason: str = "", actor: str = "",
                     role: str = "") -> OrderRecord:
        order = await self.get(order_id=order_id, client_order_id=client_order_id)
        work = asyncio.ensure_future(self._cancel(order.intent.client_order_id, reason, Actor(actor, role)))
        work.add_done_callback(_retrieve)  # a caller that left must not leave "never retrieved" noise
        return await asyncio.shield(work)

    async def _cancel(self, cid: str, reason: str, actor: "Actor", *, notify: bool = True) -> OrderRecord:
        canceled = await self._cancel_order(cid, reason)
        if notify:  # protection's own cancels do not notify: it is already looking at the position
            await self.venue.changed(canceled)
        await self.audit.record(AuditRecord(
            event="order_canceled", actor=actor.name, role=actor.role, reason=reason or "canceled on request",
            strategy_slug=canceled.intent.strategy_slug, subject=canceled.order_id, new_value=canceled.state.value))
        return canceled

    async def _cancel_order(self, cid: str, reason: str) -> OrderRecord:
        async with self._locks(cid):
            order = await self.venue.current(cid)
            if order.state in TERMINAL:
                raise FailedPrecondition(f"order {order.order_id} is {order.state.value}; "
                                         "only open orders can be canceled")
            if order.state in IN_FLIGHT:
                raise FailedPrecondition(f"order {order.order_id} is {order.state.value}: the broker has not "
                                         "acknowledged it yet; cancel it once it is NEW")
            return await self.venue.cancel(order, reason or "canceled on request")

    # ---- the kill switch: cancel what is open, close what is held ------------------------------

    async def settle_flows(self, timeout: float = 10.0) -> None:
        """Waits for every submit running now: after it, no order judged under older flags can
        still be stored or sent (what a guard's acknowledgement of new flags promises)."""
        running = [flow for flow in self._flows.values() if not flow.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)

    async def cancel_open(self, *, strategy_slug: str = "", instrument: str = "", reason: str,
                          actor: str = "", role: str = "") -> tuple[list[OrderRecord], list[str]]:
        """Cancels every open order matching the filters; (canceled orders, one sentence per failure).

        Submits still running finish first, so an order that becomes open during the call is
        canceled too."""
        def matches(order: OrderRecord) -> bool:
            return ((not strategy_slug or order.intent.strategy_slug == strategy_slug)
                    and (not instrument or order.intent.instrument == instrument))

        await self.settle_flows()
        targets = [o for o in self.journal.working_orders() if o.state in OPEN and matches(o)]
        who = Actor(actor, role)
        results = await asyncio.gather(*(asyncio.shield(self._cancel(o.intent.client_order_id, reason, who))
                                         for o in targets), return_exceptions=True)
        canceled, failures = [], []
        for order, result in zip(targets, results):
            if isinstance(result, BaseException):
                failures.append(f"{order.order_id} ({order.intent.client_order_id}) was not canceled: "
                                f"{getattr(result, 'message', None) or result}")
            else:
                canceled.append(result)
        log.warning("open orders canceled", extra={"actor": actor, "reason": reason, "canceled": len(canceled),
                                                   "failures": len(failures), "strategy": strategy_slug,
                                                   "instrument": instrument})
        return canceled, failures

    async def flatten(self, *, strategy_slug: str = "", instrument: str = "", reason: str,
                      actor: str = "", role: str = "") -> tuple[list[OrderRecord], list[OrderRecord], list[str]]:
        """Cancels the matching open orders, then closes every matching position this plane holds
        with a reduce-only market order; (closing orders, canceled orders, failures)."""
        canceled, failures = await self.cancel_open(strategy_slug=strategy_slug, instrument=instrument,
                                                    reason=f"flatten: {reason}", actor=actor, role=role)
        held = [(key, q) for key, q in sorted(self.book.positions().items())
                if (not strategy_slug or key[1] == strategy_slug) and (not instrument or key[2] == instrument)]
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S%f")
        intents = [Intent(client_order_id=f"flatten-{stamp}-{n}", strategy_slug=slug, role=StrategyRole.EXIT,
                          instrument=symbol, side=Side.SELL if quantity > 0 else Side.BUY, quantity=abs(quantity),
                          order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, reduce_only=True,
                          account=account, note=f"flatten by {actor or 'operator'}: {reason}"[:500])
                   for n, ((account, slug, symbol), quantity) in enumerate(held)]
        results = await asyncio.gather(*(self.submit(i, actor, role=role, operator_exit=True) for i in intents),
                                       return_exceptions=True)
        orders = []
        for intent, result in zip(intents, results):
            if isinstance(result, BaseException):
                failures.append(f"{intent.strategy_slug} {intent.instrument} {intent.side.signed(intent.quantity)} "
                                f"was not closed: {getattr(result, 'message', None) or result}")
                continue
            order, _ = result
            orders.append(order)
            if order.state == S.REJECTED:
                failures.append(f"{intent.strategy_slug} {intent.instrument}: {refusal_sentence(order)}")
            await self.audit.record(AuditRecord(
                event="flatten", actor=actor, role=role, reason=reason, strategy_slug=intent.strategy_slug,
                subject=order.order_id, old_value=f"{intent.instrument} {intent.side.signed(intent.quantity) * -1}",
                new_value=f"{order.state.value}: {intent.side} {intent.quantity} reduce-only market"))
        log.warning("flatten", extra={"actor": actor, "reason": reason, "orders": len(orders),
                                      "failures": len(failures), "strategy": strategy_slug, "instrument": instrument})
        return orders, canceled, failures

    async def apply_execution(self, execution):
        return await self.venue.apply_execution(execution)

    # ---- reads -----------------------------------------------------------------------------

    async def get(self, *, order_id: str = "", client_order_id: str = "") -> OrderRecord:
        if order_id:
            number = number_of(order_id)
            order = None if number is None else await self._store.by_number(number)
            if order is None:
                raise NotFound(f"no order with order_id {order_id!r} (order ids look like ord-000000000042)")
        elif client_order_id:
            order = self.journal.known(client_order_id) or await self._store.by_client_id(client_order_id)
            if order is None:
                raise NotFound(f"no order with client_order_id {client_order_id!r}")
        else:
            raise InvalidArgument("give order_id or client_order_id")
        return order

    async def fills_of(self, order: OrderRecord) -> list[FillRecord]:
        return await self._store.fills_of(order.number)

    async def list_orders(self, **filters) -> list[OrderRecord]:
        return await self._store.list_orders(**filters)

    async def financing_after(self, after_seq: int, limit: int) -> tuple[list[FinancingRecord], int]:
        """Venue-reported financing after a seq, oldest first, and the highest seq stored."""
        return await self._store.financing_after(after_seq, limit)


def build_engine(*, store: OrderStore, broker: Broker, flags: FlagsPort, exposure: ExposureSource | None,
                 limits: RiskLimits, clock: Clock, book: OwnBook | None = None,
                 journal: JournalSettings = JournalSettings(), venue: VenuePathSettings = VenuePathSettings(),
                 max_submit_delay: timedelta = timedelta(seconds=10), audit=None) -> OrderEngine:
    """Wires the three roles over one store, one broker and one own book.

    `exposure` None means sizes from the own book only (no PnL rules), as OwnBookExposure.
    A listener on the journal keeps the own book (and an exposure tail, when the source
    has one) current with every stored fill.
    """
    from services.order.exposure import OwnBookExposure

    book = book if book is not None else OwnBook()
    locks = OrderLocks()
    the_journal = Journal(store, journal)
    the_journal.on_fill(book.apply_fill)
    source = exposure if exposure is not None else OwnBookExposure(book)
    if hasattr(source, "on_fill"):
        the_journal.on_fill(source.on_fill)
    pretrade = PreTrade(flags=flags, exposure=source, limits=limits, clock=clock, book=book,
                        working=the_journal.working_orders)
    path = VenuePath(broker=broker, journal=the_journal, locks=locks, clock=clock, store=store, settings=venue)
    if audit is not None and hasattr(audit, "stored"):
        the_journal.on_audit_stored(audit.stored)
    engine = OrderEngine(store=store, journal=the_journal, pretrade=pretrade, venue=path, locks=locks, clock=clock,
                         book=book, audit=audit, max_submit_delay=max_submit_delay)
    protection = Protection(book=book, working=the_journal.working_orders, submit=engine.submit,
                            cancel=lambda cid, reason: engine._cancel(cid, reason, Actor("protection", "service"),
                                                                      notify=False),
                            history=lambda key: _latest_protected_entry(store, key),
                            on_fill_venue=trait(broker, "protects_on_fill"), record=engine.record_placed_by_venue,
                            one_close=trait(broker, "one_resting_close"))
    path.group_for = protection.group_for
    path.on_fill_for = protection.on_fill_for
    path.on_trade_for = protection.on_trade_for
    path.after_change = protection.on_change
    return engine


async def _latest_protected_entry(store: OrderStore, key) -> OrderRecord | None:
    account, slug, instrument = key
    for order in await store.list_orders(strategy_slug=slug, instrument=instrument, states=(), limit=200,
                                         before_number=None):
        intent = order.intent
        if intent.account == account and order.filled_quantity > 0 and asks_protection(intent):
            return order
    return None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked (the auth identity of the call), for the audit trail."""

    name: str
    role: str = ""


def _retrieve(done: asyncio.Future) -> None:
    if not done.cancelled():
        done.exception()


def _submit_parent(intent: Intent):
    """The Submit server span when it already continues the intent's trace, else the intent's context.

    Over gRPC the server span is the decision's grandchild (joined through the call's
    metadata), so nesting under it gives one tree: Submit -> order.submit -> broker.submit.
    A caller that sent no trace metadata (grpcurl, a backtest) still joins the decision
    through the trace context carried in the intent.
    """
    if not intent.traceparent:
        return None  # context_from would give the current context: the same parent
    parent = context_from(common_pb2.TraceContext(traceparent=intent.traceparent, tracestate=intent.tracestate))
    current = trace.get_current_span().get_span_context()
    wanted = trace.get_current_span(parent).get_span_context()
    if current.is_valid and (not wanted.is_valid or current.trace_id == wanted.trace_id):
        return None  # the current context
    return parent


__all__ = ["OrderEngine", "FlagsPort", "build_engine", "refusal_sentence"]
