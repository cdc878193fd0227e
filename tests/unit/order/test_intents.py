from datetime import datetime, timezone
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common.errors import InvalidArgument
from services.order.intents import intent_to_proto, validate_intent

INSTRUMENTS = ("USD_JPY", "EUR_USD", "BTC_JPY")


def wire(**overrides) -> order_pb2.OrderIntent:
    fields = dict(client_order_id="ma_cross:2013-01-01T22:00:00:1", strategy_slug="ma_cross",
                  role=common_pb2.STRATEGY_ROLE_ENTRY, instrument="USD_JPY", side=common_pb2.SIDE_BUY,
                  quantity="10000", order_type=order_pb2.ORDER_TYPE_MARKET)
    fields.update(overrides)
    return order_pb2.OrderIntent(**fields)


def validate(message):
    return validate_intent(message, instruments=INSTRUMENTS, default_account="paper")


def test_a_good_market_intent_becomes_an_exact_ioc_intent_on_the_default_account():
    intent = validate(wire())
    assert intent.quantity == Decimal("10000") and isinstance(intent.quantity, Decimal)
    assert (intent.side, intent.role, intent.order_type, intent.time_in_force, intent.account) == (
        "buy", "entry", "market", "IOC", "paper")


def test_a_limit_intent_defaults_to_gtc_and_round_trips_to_the_wire():
    message = wire(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="86.50", side=common_pb2.SIDE_SELL,
                   account="acc-2")
    intent = validate_intent(message, instruments=INSTRUMENTS, default_account="paper", accounts=("paper", "acc-2"))
    assert intent.time_in_force == "GTC" and intent.limit_price == Decimal("86.50")
    back = intent_to_proto(intent)
    assert back.limit_price == "86.50" and back.side == common_pb2.SIDE_SELL and back.account == "acc-2"


@pytest.mark.parametrize("overrides, words", [
    (dict(client_order_id=""), "client_order_id is empty"),
    (dict(client_order_id="x" * 65), "65 characters"),
    (dict(client_order_id="has space"), "outside [A-Za-z0-9._:-]"),
    (dict(client_order_id="ü-order"), "outside"),
    (dict(strategy_slug=""), "strategy_slug is empty"),
    (dict(role=common_pb2.STRATEGY_ROLE_UNSPECIFIED), "STRATEGY_ROLE_ENTRY"),
    (dict(side=common_pb2.SIDE_UNSPECIFIED), "SIDE_BUY or SIDE_SELL"),
    (dict(order_type=order_pb2.ORDER_TYPE_UNSPECIFIED), "ORDER_TYPE_MARKET"),
    (dict(instrument="GBP_USD"), "'GBP_USD' is not traded here"),
    (dict(instrument=""), "is not traded here"),
    (dict(quantity="0"), "quantity '0' must be greater than zero"),
    (dict(quantity="-5"), "quantity '-5' must be greater than zero"),
    (dict(quantity="NaN"), "NaN and Infinity"),
    (dict(quantity="Infinity"), "NaN and Infinity"),
    (dict(quantity="ten"), "quantity 'ten' is not a decimal number"),
    (dict(quantity=""), "quantity '' is not a decimal number"),
    (dict(order_type=order_pb2.ORDER_TYPE_LIMIT), "a limit order needs limit_price"),
    (dict(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="-1"), "limit_price '-1' must be greater than zero"),
    (dict(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="nan"), "limit_price 'nan'"),
    (dict(limit_price="86.5"), "a market order must not carry"),
    (dict(stop_price="86.5"), "a market order must not carry"),
    (dict(order_type=order_pb2.ORDER_TYPE_STOP), "a stop order needs stop_price"),
    (dict(order_type=order_pb2.ORDER_TYPE_STOP, stop_price="0"), "stop_price '0' must be greater than zero"),
    (dict(order_type=order_pb2.ORDER_TYPE_TRAILING_STOP), "a trailing stop needs trail_distance"),
    (dict(order_type=order_pb2.ORDER_TYPE_TRAILING_STOP, trail_distance="0.2", limit_price="86.5"),
     "a trailing stop needs trail_distance (a positive price distance) and no limit_price"),
    (dict(order_type=order_pb2.ORDER_TYPE_TRAILING_STOP, trail_distance="-0.2"),
     "trail_distance '-0.2' must be greater than zero"),
    (dict(trail_distance="0.2"), "trail_distance belongs to ORDER_TYPE_TRAILING_STOP orders only"),
    (dict(trailing_stop_distance="0.2", role=common_pb2.STRATEGY_ROLE_EXIT), "protect a new position"),
    (dict(trailing_stop_distance="nan"), "trailing_stop_distance 'nan'"),
    (dict(decision_time=Timestamp()), "decision_time 1970-01-01T00:00:00+00:00 is not after 1970-01-01"),
    (dict(decision_time=Timestamp(seconds=-86400)), "is not after 1970-01-01"),
    (dict(decision_time=Timestamp(seconds=1357077600, nanos=-1)), "decision_time is not a valid timestamp"),
    (dict(decision_time=Timestamp(seconds=10**12)), "decision_time is not a valid timestamp"),
])
def test_bad_intents_are_refused_with_a_sentence_naming_the_field(overrides, words):
    with pytest.raises(InvalidArgument) as error:
        validate(wire(**overrides))
    assert words in error.value.message


def test_decision_time_is_read_as_utc_to_the_microsecond_and_round_trips_to_the_wire():
    stamp = Timestamp(seconds=1357077600, nanos=123456789)  # 2013-01-01T22:00:00.123456789Z
    intent = validate(wire(decision_time=stamp))
    assert intent.decision_time == datetime(2013, 1, 1, 22, 0, 0, 123456, tzinfo=timezone.utc)
    assert intent.decision_time.utcoffset().total_seconds() == 0
    back = intent_to_proto(intent)
    assert back.HasField("decision_time") and (back.decision_time.seconds, back.decision_time.nanos) == (
        1357077600, 123456000)  # nanoseconds below the microsecond are dropped


def test_without_decision_time_the_intent_has_none_and_the_wire_leaves_it_unset():
    intent = validate(wire())
    assert intent.decision_time is None
    assert not intent_to_proto(intent).HasField("decision_time")


def test_a_trailing_stop_and_an_entrys_trailing_protection_round_trip_exactly():
    stop = validate(wire(order_type=order_pb2.ORDER_TYPE_TRAILING_STOP, trail_distance="0.20", stop_price="86.10",
                         side=common_pb2.SIDE_SELL, role=common_pb2.STRATEGY_ROLE_EXIT, reduce_only=True))
    assert (stop.order_type, stop.trail_distance, stop.stop_price, stop.time_in_force) == (
        "trailing_stop", Decimal("0.20"), Decimal("86.10"), "GTC")
    back = intent_to_proto(stop)
    assert (back.order_type, back.trail_distance, back.stop_price) == (
        order_pb2.ORDER_TYPE_TRAILING_STOP, "0.20", "86.10")
    entry = validate(wire(trailing_stop_distance="0.05"))
    assert entry.trailing_stop_distance == Decimal("0.05")
    assert intent_to_proto(entry).trailing_stop_distance == "0.05"
