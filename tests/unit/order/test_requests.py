"""The order plane's edge: the issue-15 cases, refused as INVALID_ARGUMENT with a sentence naming the field."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common.errors import InvalidArgument
from services.order.intents import validate_intent
from services.order.records import number_of
from services.order.requests import account_of, cancel_order, order_query, order_ref, stream_request


def intent(**overrides) -> order_pb2.OrderIntent:
    fields = dict(client_order_id="c-1", strategy_slug="ma_cross", role=common_pb2.STRATEGY_ROLE_ENTRY,
                  instrument="USD_JPY", side=common_pb2.SIDE_BUY, quantity="1000",
                  order_type=order_pb2.ORDER_TYPE_MARKET)
    fields.update(overrides)
    return order_pb2.OrderIntent(**fields)


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as error:
        call(*args, **kwargs)
    return error.value.message


def submit(message: order_pb2.OrderIntent):
    return validate_intent(message, instruments=("USD_JPY",), default_account="paper")


@pytest.mark.parametrize("overrides, words", [
    (dict(decision_time=Timestamp(seconds=253402300799, nanos=999999000)),
     "decision_time 9999-12-31T23:59:59.999999+00:00 is not before 2100-01-01T00:00:00Z"),
    (dict(quantity="١٢٣"), "quantity '١٢٣' is not a decimal number in ASCII digits"),
    (dict(quantity="𝟙"), "quantity '𝟙' is not a decimal number in ASCII digits"),
    (dict(quantity="1e999999"), "quantity '1e999999' has 1,000,000 digits before the decimal point"),
    (dict(quantity="1e-16384"), "quantity '1e-16384' has 16,384 digits after the decimal point"),
    (dict(order_type=order_pb2.ORDER_TYPE_LIMIT, limit_price="1e-999999"), "limit_price '1e-999999' has 999,999"),
    (dict(account="nope"), "account 'nope' is not one this plane knows; known: paper"),
    (dict(strategy_slug="x" * 10_000), "strategy_slug 'xxxx"),
    (dict(strategy_slug="ドル円"), "strategy_slug 'ドル円' is not a strategy slug"),
    (dict(strategy_slug="ok_slug\n"), "strategy_slug 'ok_slug\\n' is not a strategy slug"),
    (dict(strategy_slug="ma\x00cross"), "strategy_slug 'ma\\x00cross' is not a strategy slug"),
    (dict(note="why\x00"), "note has the unprintable character U+0000"),
    (dict(account="pa\x00per"), "account 'pa\\x00per' is not one this plane knows"),
    (dict(client_order_id="c\x00"), "client_order_id 'c\\x00' has characters outside [A-Za-z0-9._:-]"),
    (dict(client_order_id="c-1\n"), "outside [A-Za-z0-9._:-]"),
])
def test_issue_15_submit_cases_are_invalid_argument(overrides, words):
    assert words in refusal(submit, intent(**overrides))


def test_the_default_and_the_configured_accounts_are_accepted():
    assert submit(intent()).account == "paper"
    assert submit(intent(account="paper")).account == "paper"
    assert validate_intent(intent(account="acc-2"), instruments=("USD_JPY",), default_account="paper",
                           accounts=("paper", "acc-2")).account == "acc-2"


@pytest.mark.parametrize("order_id", ["ord-99999999999999999999", "ord-9223372036854775808", "ord-١٢", "ord-",
                                      "ord-1\x00", "42", "ord-+1", "ord- 1"])
def test_order_ids_that_are_not_int64_order_numbers_are_none(order_id):
    assert number_of(order_id) is None


def test_order_numbers_read_back():
    assert number_of("ord-000000000042") == 42
    assert number_of("ord-9223372036854775807") == 2**63 - 1


def test_cancel_get_and_list_refuse_ids_that_do_not_fit():
    assert "order_id 'ord-99999999999999999999' is not an order id like ord-000000000042" in refusal(
        cancel_order, order_pb2.CancelRequest(order_id="ord-99999999999999999999", reason="test"))
    assert "page_token 'ord-99999999999999999999' is not a token from a previous response" in refusal(
        order_query, order_pb2.ListOrdersRequest(page_token="ord-99999999999999999999"))
    assert "client_order_id 'c\\x00'" in refusal(order_ref, order_pb2.GetOrderRequest(client_order_id="c\x00"))
    assert "order_id 'ord-1\\x00'" in refusal(order_ref, order_pb2.GetOrderRequest(order_id="ord-1\x00"))
    assert "reason has the unprintable character U+0000" in refusal(
        cancel_order, order_pb2.CancelRequest(order_id="ord-1", reason="\x00"))
    assert "not both" in refusal(order_ref, order_pb2.GetOrderRequest(order_id="ord-1", client_order_id="c-1"))
    assert "give order_id or client_order_id" in refusal(order_ref, order_pb2.GetOrderRequest())


def test_list_filters_become_domain_values():
    query = order_query(order_pb2.ListOrdersRequest(
        strategy_slug="ma_cross", instrument="USD_JPY", limit=5, page_token="ord-000000000010",
        states=[order_pb2.ORDER_STATE_NEW, order_pb2.ORDER_STATE_NEW, order_pb2.ORDER_STATE_FILLED]))
    assert (query.strategy_slug, query.instrument, query.limit, query.before_number) == ("ma_cross", "USD_JPY", 5, 10)
    assert [s.value for s in query.states] == ["NEW", "FILLED"]
    assert order_query(order_pb2.ListOrdersRequest()).limit == 100
    assert "limit 1001 is above the maximum 1000" in refusal(order_query, order_pb2.ListOrdersRequest(limit=1001))
    assert "states has 99" in refusal(order_query, order_pb2.ListOrdersRequest(states=[99]))
    assert "strategy_slug 'a\\x00'" in refusal(order_query, order_pb2.ListOrdersRequest(strategy_slug="a\x00"))
    assert "instrument 'usd/jpy' is not a symbol like USD_JPY" in refusal(
        order_query, order_pb2.ListOrdersRequest(instrument="usd/jpy"))


def test_watch_and_broker_position_requests():
    watch = stream_request(order_pb2.WatchFillsRequest(strategy_slugs=["a", "b"], resume_after_seq=3))
    assert (watch.strategy_slugs, watch.after_seq) == (frozenset({"a", "b"}), 3)
    assert stream_request(order_pb2.WatchOrdersRequest()).after_seq is None
    assert "resume_after_seq 18446744073709551615 is above" in refusal(
        stream_request, order_pb2.WatchOrdersRequest(resume_after_seq=2**64 - 1))
    assert "strategy_slugs contains 'a\\n'" in refusal(
        stream_request, order_pb2.WatchOrdersRequest(strategy_slugs=["a\n"]))
    assert account_of(order_pb2.GetBrokerPositionsRequest(), default_account="paper") == "paper"
    assert "account 'nope'" in refusal(account_of, order_pb2.GetBrokerPositionsRequest(account="nope"),
                                       default_account="paper")
