"""The Order servicer: protobuf in, domain calls, protobuf out. No business rules here."""

from __future__ import annotations

import asyncio

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common import validation
from services.common.auth import Role, current_identity
from services.common.eager import start_eagerly
from services.common.errors import FailedPrecondition, InvalidArgument, PlaneError
from services.common.server import internal_error
from services.common.wire import ORDER_STATE_TO_PROTO, SIDE_TO_PROTO, decimal_text
from services.common.timeutil import to_timestamp
from services.order.engine import OrderEngine, refusal_sentence
from services.order.intents import intent_to_proto, validate_intent
from services.order.records import FillRecord, FinancingRecord, OrderRecord, TraceRef
from services.order.requests import account_of, cancel_order, order_query, order_ref, stream_request
from services.order.states import OrderState

POLICY = {
    "/quantmesh.order.v1.Order/Submit": frozenset({Role.STRATEGY, Role.OPERATOR}),
    "/quantmesh.order.v1.Order/SubmitBatch": frozenset({Role.STRATEGY, Role.OPERATOR}),
    "/quantmesh.order.v1.Order/SubmitStream": frozenset({Role.STRATEGY, Role.OPERATOR}),
    "/quantmesh.order.v1.Order/Cancel": frozenset({Role.STRATEGY, Role.OPERATOR}),
    "/quantmesh.order.v1.Order/CancelOpen": frozenset({Role.OPERATOR}),
    "/quantmesh.order.v1.Order/Flatten": frozenset({Role.OPERATOR}),
}


def order_to_proto(order: OrderRecord) -> order_pb2.OrderRecord:
    return order_pb2.OrderRecord(
        order_id=order.order_id, intent=intent_to_proto(order.intent), state=ORDER_STATE_TO_PROTO[order.state],
        filled_quantity=decimal_text(order.filled_quantity), average_fill_price=decimal_text(order.average_fill_price),
        commission=decimal_text(order.commission), reject_rule=order.reject_rule, reason=order.reason,
        broker_order_id=order.broker_order_id, broker=order.broker,
        created_time=to_timestamp(order.created_time), updated_time=to_timestamp(order.updated_time))


def fill_to_proto(fill: FillRecord) -> order_pb2.Fill:
    return order_pb2.Fill(
        fill_id=fill.fill_id, order_id=fill.order_id, client_order_id=fill.client_order_id,
        strategy_slug=fill.strategy_slug, account=fill.account, instrument=fill.instrument, side=SIDE_TO_PROTO[fill.side],
        quantity=decimal_text(fill.quantity), price=decimal_text(fill.price), commission=decimal_text(fill.commission),
        time=to_timestamp(fill.time), broker_fill_id=fill.broker_fill_id)


def financing_to_proto(record: FinancingRecord) -> order_pb2.FinancingCharge:
    return order_pb2.FinancingCharge(
        seq=record.seq, financing_id=record.financing_id, account=record.account, instrument=record.instrument,
        strategy_slug=record.strategy_slug, amount=decimal_text(record.amount), currency=record.currency,
        time=to_timestamp(record.time), broker_fill_id=record.broker_fill_id)


MAX_BATCH = 1_000
#: SubmitStream: intents of one call worked on at a time (reading waits beyond it), and how much
#: of an overlong client id an answer echoes.
MAX_STREAM_IN_FLIGHT = 256
MAX_ECHOED_ID = 128
_END = object()


def _who() -> dict[str, str]:
    """The caller's auth identity, for the audit trail."""
    who = current_identity()
    return {"actor": who.actor, "role": who.role.value}


def _result(answer) -> order_pb2.SubmitResult:
    """One intent's answer as Submit would give it: the order, or the status and sentence."""
    if isinstance(answer, PlaneError):
        return order_pb2.SubmitResult(status=answer.code.name, message=answer.message)
    if isinstance(answer, BaseException):
        raise answer  # unexpected: the host turns it into INTERNAL with an error id
    order, duplicate = answer
    if order.state == OrderState.REJECTED and order.reject_rule:
        return order_pb2.SubmitResult(order=order_to_proto(order), duplicate=duplicate, status="FAILED_PRECONDITION",
                                      message=refusal_sentence(order))
    return order_pb2.SubmitResult(order=order_to_proto(order), duplicate=duplicate, status="OK")


def _trace(ref: TraceRef) -> common_pb2.TraceContext:
    return common_pb2.TraceContext(traceparent=ref.traceparent, tracestate=ref.tracestate)


class OrderServicer(order_pb2_grpc.OrderServicer):
    def __init__(self, engine: OrderEngine, *, instruments: tuple[str, ...], default_account: str,
                 broker_positions) -> None:
        self._engine = engine
        self._instruments = instruments
        self._account = default_account
        self._broker_positions = broker_positions  # async (account) -> list[BrokerPositionView]

    async def Submit(self, request, context):
        intent = self._intent_of(request, "SubmitRequest")
        who = current_identity()
        order, duplicate = await self._engine.submit(intent, who.actor, role=who.role.value)
        if order.state == OrderState.REJECTED and order.reject_rule:
            # The refusal is recorded (GetOrder shows it); the caller also gets it as a status.
            raise FailedPrecondition(refusal_sentence(order))
        return order_pb2.SubmitResponse(order=order_to_proto(order), duplicate=duplicate)

    async def SubmitBatch(self, request, context):
        count = len(request.intents)
        if not 1 <= count <= MAX_BATCH:
            raise InvalidArgument(f"intents holds {count:,}; send 1 to {MAX_BATCH:,} intents per SubmitBatch")
        who = current_identity()
        slots: list[order_pb2.SubmitResult | None] = []
        work = []
        for message in request.intents:
            try:
                intent = validate_intent(message, instruments=self._instruments, default_account=self._account)
            except InvalidArgument as exc:
                slots.append(order_pb2.SubmitResult(status="INVALID_ARGUMENT", message=exc.message))
                continue
            slots.append(None)
            work.append(self._engine.submit(intent, who.actor, role=who.role.value))
        # Every valid intent runs as its own flow; the journal stores them in one group commit.
        answers = iter(await asyncio.gather(*work, return_exceptions=True))
        return order_pb2.SubmitBatchResponse(results=[slot or _result(next(answers)) for slot in slots])

    async def SubmitStream(self, request_iterator, context):
        """Reads intents while earlier ones are worked on; answers each as it is decided.

        The reader reads the next intent only while fewer than MAX_STREAM_IN_FLIGHT are read and
        not yet answered on the wire, so a caller that stops reading its answers stops being read
        (the plane's memory stays bounded). Each intent it reads is handed to the engine at once,
        as the engine's own detached flow, so a caller that goes away stops the answers, never
        the work on an intent already read."""
        who = current_identity()
        answers: asyncio.Queue = asyncio.Queue()
        window = asyncio.Semaphore(MAX_STREAM_IN_FLIGHT)

        async def answer(cid: str, intent) -> None:
            try:
                result = _result(await self._engine.submit(intent, who.actor, role=who.role.value))
            except PlaneError as exc:
                result = order_pb2.SubmitResult(status=exc.code.name, message=exc.message)
            except Exception:  # one intent's unexpected failure: its answer says so, the stream goes on
                result = order_pb2.SubmitResult(status="INTERNAL", message=internal_error(
                    "/quantmesh.order.v1.Order/SubmitStream", client_order_id=cid))
            answers.put_nowait(order_pb2.SubmitStreamResponse(client_order_id=cid, result=result))

        async def read() -> None:
            working: set[asyncio.Future] = set()
            requests = request_iterator.__aiter__()
            try:
                while True:
                    await window.acquire()  # before reading: a message read is never left unsubmitted
                    try:
                        request = await anext(requests)
                    except StopAsyncIteration:
                        break
                    cid = request.intent.client_order_id[:MAX_ECHOED_ID]
                    try:
                        intent = self._intent_of(request, "SubmitStreamRequest")
                    except InvalidArgument as exc:
                        answers.put_nowait(order_pb2.SubmitStreamResponse(client_order_id=cid, result=(
                            order_pb2.SubmitResult(status="INVALID_ARGUMENT", message=exc.message))))
                        continue
                    # Started at once: the engine's flow exists before this reader can be cancelled.
                    task = start_eagerly(answer(cid, intent))
                    working.add(task)
                    task.add_done_callback(working.discard)
                if working:
                    await asyncio.wait(working)  # a wait, not a gather: cancelling it leaves them running
                answers.put_nowait(_END)
            except Exception as exc:  # a message that did not decode, or the call broke: the stream ends
                answers.put_nowait(exc)

        reader = asyncio.ensure_future(read())
        try:
            while True:
                item = await answers.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
                window.release()  # answered on the wire: room for one more intent
        finally:
            # The caller went away or the stream failed: stop reading. Intents already read keep
            # running (their answers go nowhere); their orders are stored all the same.
            reader.cancel()

    def _intent_of(self, request, message: str):
        """The request's intent, validated (Submit and SubmitStream carry it the same way)."""
        if not request.HasField("intent"):
            raise InvalidArgument(f"intent is missing; send {message}{{intent: {{...}}}}")
        return validate_intent(request.intent, instruments=self._instruments, default_account=self._account)

    async def CancelOpen(self, request, context):
        strategy, instrument, reason = self._operator_filters(request)
        # Detached: a caller that goes away does not stop a kill switch half-way.
        canceled, failures = await asyncio.shield(asyncio.ensure_future(self._engine.cancel_open(
            strategy_slug=strategy, instrument=instrument, reason=reason, **_who())))
        return order_pb2.CancelOpenResponse(canceled=[order_to_proto(o) for o in canceled], failures=failures)

    async def Flatten(self, request, context):
        strategy, instrument, reason = self._operator_filters(request)
        orders, canceled, failures = await asyncio.shield(asyncio.ensure_future(self._engine.flatten(
            strategy_slug=strategy, instrument=instrument, reason=reason, **_who())))
        return order_pb2.FlattenResponse(orders=[order_to_proto(o) for o in orders],
                                         canceled=[order_to_proto(o) for o in canceled], failures=failures)

    def _operator_filters(self, request) -> tuple[str, str, str]:
        strategy = validation.slug("strategy_slug", request.strategy_slug) if request.strategy_slug else ""
        instrument = request.instrument
        if instrument and instrument not in self._instruments:
            raise InvalidArgument(f"instrument {validation.shown(instrument)} is not traded here; known: "
                                  f"{', '.join(sorted(self._instruments))}")
        reason = validation.text("reason", request.reason, max_chars=500).strip()
        if not reason:
            raise InvalidArgument("reason is required: say why (it is recorded with every order it touches)")
        return strategy, instrument, reason

    async def Cancel(self, request, context):
        ask = cancel_order(request)
        order = await self._engine.cancel(order_id=ask.order.order_id, client_order_id=ask.order.client_order_id,
                                          reason=ask.reason, **_who())
        return order_pb2.CancelResponse(order=order_to_proto(order))

    async def GetOrder(self, request, context):
        ref = order_ref(request)
        order = await self._engine.get(order_id=ref.order_id, client_order_id=ref.client_order_id)
        fills = await self._engine.fills_of(order)
        return order_pb2.GetOrderResponse(order=order_to_proto(order), fills=[fill_to_proto(f) for f in fills])

    async def ListOrders(self, request, context):
        query = order_query(request)
        limit = query.limit
        orders = await self._engine.list_orders(strategy_slug=query.strategy_slug, instrument=query.instrument,
                                                states=list(query.states), limit=limit + 1,
                                                before_number=query.before_number)
        page, more = orders[:limit], len(orders) > limit
        return order_pb2.ListOrdersResponse(orders=[order_to_proto(o) for o in page],
                                            next_page_token=page[-1].order_id if more else "")

    async def WatchOrders(self, request, context):
        watch = stream_request(request)
        slugs, after = watch.strategy_slugs, watch.after_seq
        async for seq, event in self._engine.order_events.subscribe(
                after_seq=after, matches=lambda e: not slugs or e.order.intent.strategy_slug in slugs):
            yield order_pb2.WatchOrdersResponse(seq=seq, order=order_to_proto(event.order),
                                                trace_context=_trace(event.trace))

    async def WatchFills(self, request, context):
        watch = stream_request(request)
        slugs, after = watch.strategy_slugs, watch.after_seq
        async for seq, event in self._engine.fill_events.subscribe(
                after_seq=after, matches=lambda e: not slugs or e.fill.strategy_slug in slugs):
            yield order_pb2.WatchFillsResponse(seq=seq, fill=fill_to_proto(event.fill),
                                               trace_context=_trace(event.trace))

    async def ListFinancing(self, request, context):
        after = validation.sequence("after_seq", request.after_seq)
        limit = validation.limit("limit", request.limit, default=100, maximum=1000)
        records, last = await self._engine.financing_after(after, limit)
        return order_pb2.ListFinancingResponse(charges=[financing_to_proto(r) for r in records], last_seq=last)

    async def GetBrokerPositions(self, request, context):
        from datetime import datetime, timezone

        account = account_of(request, default_account=self._account)
        views = await self._broker_positions(account)
        return order_pb2.GetBrokerPositionsResponse(
            broker=self._engine.broker_name, as_of=to_timestamp(datetime.now(timezone.utc)),
            last_fill_seq=self._engine.journal.last_fill_seq,
            positions=[order_pb2.BrokerPosition(
                account=v.account, instrument=v.instrument, quantity=decimal_text(v.quantity),
                average_price=decimal_text(v.average_price)) for v in views])
