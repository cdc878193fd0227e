"""Order snapshots in the event log: what WatchOrders replays after a restart."""

import json
from datetime import datetime, timezone
from decimal import Decimal

from services.order.records import OrderRecord, order_from_json, order_to_json
from services.order.states import OrderState
from tests.unit.order.conftest import START, intent

DECIDED = datetime(2013, 1, 1, 21, 59, 0, 123456, tzinfo=timezone.utc)


def record(**intent_fields) -> OrderRecord:
    return OrderRecord(number=7, intent=intent("snap", **intent_fields), state=OrderState.FILLED, created_time=START,
                       updated_time=START, filled_quantity=Decimal(1000), average_fill_price=Decimal("86.72"),
                       broker_order_id="paper-7", broker="paper")


def test_a_snapshot_keeps_the_decision_time_to_the_microsecond():
    order = record(decision_time=DECIDED)
    back = order_from_json(order_to_json(order))
    assert back == order and back.intent.decision_time == DECIDED and back.intent.decision_time.tzinfo is not None


def test_a_snapshot_without_a_decision_time_reads_back_as_none():
    assert order_from_json(order_to_json(record())).intent.decision_time is None


def test_a_snapshot_written_before_decision_time_existed_reads_back_as_none():
    body = json.loads(order_to_json(record(decision_time=DECIDED)))
    del body["intent"]["decision_time"]  # what the event log holds from before this field
    back = order_from_json(json.dumps(body))
    assert back.intent.decision_time is None and back == record()


def test_a_snapshot_keeps_no_pyramiding_and_one_written_before_it_reads_back_false():
    order = record(no_pyramiding=True)
    assert order_from_json(order_to_json(order)) == order
    body = json.loads(order_to_json(order))
    del body["intent"]["no_pyramiding"]
    assert order_from_json(json.dumps(body)).intent.no_pyramiding is False
