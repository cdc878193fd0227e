"""Every value the order journal and the paper venue write comes back from PostgreSQL exactly.

Both write a batch as one statement of column arrays (services/common/db.py, unnest_sql), and the
journal's event snapshots as JSON (orjson). Awkward values on purpose: exponent-form decimals, 22
significant digits (more than a float holds), a time with microseconds in a non-UTC offset, text
with quotes, backslashes, a tab and non-ASCII, NULLs.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal


from services.common.vocabulary import OrderState, OrderType, Side, StrategyRole, TimeInForce
from services.order.brokers.base import BrokerFill, BrokerOrder
from services.order.brokers.paper import VenueOrder
from services.order.brokers.venue_store import PostgresVenueStore
from services.order.intents import Intent
from services.order.journal import Journal
from services.order.records import FillRecord, OrderRecord, TraceRef
from services.order.repository import PostgresOrderStore

TOKYO = timezone(timedelta(hours=9))
DECIDED = datetime(2026, 12, 1, 18, 30, 5, 123457, tzinfo=TOKYO)
NOTE = 'entry "quoted" \\ back\\slash, 円 ✓, tab\there'
TRACE = TraceRef(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate="k=v,q=1")


def awkward_order(cid: str) -> OrderRecord:
    intent = Intent(client_order_id=cid, strategy_slug="values", role=StrategyRole.ENTRY, instrument="USD_JPY",
                    side=Side.SELL, quantity=Decimal("1E+3"), order_type=OrderType.LIMIT,
                    limit_price=Decimal("150.1234567890123456789"), time_in_force=TimeInForce.GTC, account="paper", note=NOTE,
                    traceparent=TRACE.traceparent, tracestate=TRACE.tracestate, decision_time=DECIDED,
                    stop_loss_distance=Decimal("0.05"), take_profit_distance=None, no_pyramiding=True)
    return OrderRecord(number=0, intent=intent, state=OrderState.PENDING_SUBMIT, created_time=DECIDED,
                       updated_time=DECIDED)


async def test_the_journal_reads_back_what_it_wrote(pool):
    store = PostgresOrderStore(pool)
    journal = Journal(store)
    await journal.open()
    try:
        draft = awkward_order("values-1")
        order = await journal.new_order([draft, draft.with_changes(state=OrderState.SUBMITTED, broker="paper")],
                                        TRACE)
        moved = await journal.move(order.with_changes(
            state=OrderState.PARTIALLY_FILLED, filled_quantity=Decimal("400"), average_fill_price=Decimal("150.2"),
            commission=Decimal("0.000000001"), broker_order_id="paper-1", reason=NOTE,
            updated_time=DECIDED + timedelta(microseconds=1)), TRACE)
        fill = await journal.record_fill(FillRecord(
            seq=0, order_id=order.order_id, client_order_id="values-1", strategy_slug="values", account="paper",
            instrument="USD_JPY", side=Side.SELL, quantity=Decimal("600"), price=Decimal("150.123"),
            commission=Decimal("1.5E-7"), time=DECIDED + timedelta(seconds=1), broker_fill_id="fill-✓-1"),
            moved.with_changes(state=OrderState.FILLED, filled_quantity=Decimal("1000")), TRACE)
    finally:
        await journal.close()

    stored = await store.by_number(order.number)
    assert stored == moved.with_changes(state=OrderState.FILLED, filled_quantity=Decimal("1000"))
    assert stored.intent.note == NOTE and stored.intent.decision_time == DECIDED
    assert stored.intent.quantity == 1000 and stored.intent.limit_price == Decimal("150.1234567890123456789")
    assert stored.commission == Decimal("0.000000001") and stored.intent.take_profit_distance is None
    [read_fill] = await store.fills_of(order.number)
    assert read_fill == fill
    events = [event async for event in store.order_events(0, 10)]
    assert [(e.order.state, e.trace) for _, e in events] == [
        (OrderState.PENDING_SUBMIT, TRACE), (OrderState.SUBMITTED, TRACE), (OrderState.PARTIALLY_FILLED, TRACE),
        (OrderState.FILLED, TRACE)]
    assert events[2][1].order == moved  # the snapshot is the whole order, as it was


async def test_the_paper_venue_reads_back_what_it_wrote(pool):
    store = await PostgresVenueStore.open(pool)
    try:
        order = VenueOrder(number=7, order=BrokerOrder(
            client_order_id="venue-✓", account="paper", instrument="USD_JPY", side=Side.BUY,
            quantity=Decimal("2.5E+3"), order_type=OrderType.STOP, limit_price=None, stop_price=Decimal("150.000000001"),
            time_in_force=TimeInForce.GTC, trail_distance=Decimal("0.25")), state="new", reference_time=DECIDED,
            reason=NOTE, trail_stop=Decimal("149.75"))
        assert await store.accept(order)
        assert not await store.accept(order)  # a second acceptance of the same client id is refused
        fill = BrokerFill(broker_fill_id="pf-1", client_order_id="venue-✓", quantity=Decimal("1000"),
                          price=Decimal("150.0001"), commission=Decimal("0.000000001"), time=DECIDED)
        order.state, order.filled, order.triggered = "partially_filled", Decimal("1000"), True
        order.fills.append(fill)
        await store.save(order, fill)
        assert await store.get("venue-✓") == order
    finally:
        await store.close()
