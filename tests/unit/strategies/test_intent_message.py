"""One translation of a draft into an intent, live and in a backtest: desk.intent_message, read
by the order plane's own validate_intent (what Order.Submit does with the wire message)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from quantmesh.common.v1 import common_pb2
from services.order.intents import validate_intent
from services.strategies.desk import MAX_NOTE_CHARS, IntentDraft, intent_message

DECIDED = datetime(2013, 2, 4, 9, 0, 0, 250_000, tzinfo=timezone.utc)


def _draft(**changes) -> IntentDraft:
    fields = dict(client_order_id="ma_cross.e.USD_JPY.20130204T090000", slug="ma_cross", role="entry",
                  instrument="USD_JPY", side="buy", quantity=Decimal("10000"), limit_price=None, reduce_only=False,
                  note="SMA(10) crossed above SMA(30) on M1", decision_time=DECIDED)
    return IntentDraft(**{**fields, **changes})


def _intent(draft: IntentDraft, **kw):
    trace = common_pb2.TraceContext(traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    return validate_intent(intent_message(draft, account="backtest", trace=trace, **kw), instruments=("USD_JPY",),
                           default_account="backtest")


def test_a_market_draft_becomes_an_ioc_market_intent_with_its_decision_time():
    intent = _intent(_draft())
    assert (intent.order_type, intent.time_in_force, intent.side, intent.quantity) == ("market", "IOC", "buy",
                                                                                       Decimal("10000"))
    assert intent.decision_time == DECIDED and intent.account == "backtest" and intent.role == "entry"
    assert intent.traceparent.startswith("00-0af7651916cd43dd")


def test_a_limit_draft_rests_gtc_and_an_exit_is_reduce_only():
    limit = _intent(_draft(limit_price=Decimal("91.500")))
    assert (limit.order_type, limit.time_in_force, limit.limit_price) == ("limit", "GTC", Decimal("91.500"))
    exit_ = _intent(_draft(role="exit", side="sell", reduce_only=True, client_order_id="ma_cross.x.USD_JPY.1.0"))
    assert exit_.reduce_only and exit_.role == "exit" and exit_.side == "sell"


def test_a_long_note_is_cut_the_same_way_everywhere():
    intent = _intent(_draft(note="x" * 3000, decision_time=None))
    assert intent.note == "x" * MAX_NOTE_CHARS and intent.decision_time is None


def test_protection_distances_travel_to_the_intent_and_none_means_none():
    protected = _intent(_draft(stop_loss_distance=Decimal("0.150"), take_profit_distance=Decimal("0.300")))
    assert (protected.stop_loss_distance, protected.take_profit_distance) == (Decimal("0.150"), Decimal("0.300"))
    plain = _intent(_draft())
    assert not plain.stop_loss_distance and not plain.take_profit_distance


def test_no_pyramiding_travels_to_the_intent():
    assert _intent(_draft(no_pyramiding=True)).no_pyramiding
    assert not _intent(_draft()).no_pyramiding
