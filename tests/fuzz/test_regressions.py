"""Issue 15, case by case, over the wire against the real planes: each request that once came back
UNKNOWN with a Python exception's text, was accepted when it should not have been, or was refused
for the wrong reason, now gets INVALID_ARGUMENT with a sentence naming the field, and the reads
that the poison value once broke still answer."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from quantmesh.control.v1 import control_pb2, control_pb2_grpc
from quantmesh.market_data.v1 import market_data_pb2 as md
from quantmesh.market_data.v1 import market_data_pb2_grpc
from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from tests.fuzz.rpcs import KNOWN_ORDER, PLAUSIBLE, every_rpc

POISON = Timestamp(seconds=253402300799, nanos=999999000)  # 9999-12-31T23:59:59.999999Z
PAST_9999, BEFORE_YEAR_1 = 253402300800, -62135596801
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def refused(call, request, *words: str, code: grpc.StatusCode = INVALID) -> str:
    with pytest.raises(grpc.RpcError) as error:
        call(request, timeout=30)
    assert error.value.code() == code, error.value.details()
    for word in words:
        assert word in error.value.details()
    return error.value.details()


@pytest.fixture(scope="module")
def order(fuzz_mesh):
    return order_pb2_grpc.OrderStub(fuzz_mesh.channels["order"])


@pytest.fixture(scope="module")
def control(fuzz_mesh):
    stub = control_pb2_grpc.ControlStub(fuzz_mesh.channels["control"])
    # The fuzzing may have locked trading; these cases need it open to reach the order plane's checks.
    stub.SetGlobalFlags(control_pb2.SetGlobalFlagsRequest(global_lock=False, global_entry_enabled=True,
                                                          global_exit_enabled=True, reason="regressions"), timeout=30)
    return stub


def intent(cid: str, **fields) -> order_pb2.SubmitRequest:
    base = order_pb2.OrderIntent()
    base.CopyFrom(PLAUSIBLE["quantmesh.order.v1.SubmitRequest"][0].intent)
    base.client_order_id = cid
    for name, value in fields.items():
        if isinstance(value, Timestamp):
            getattr(base, name).CopyFrom(value)
        else:
            setattr(base, name, value)
    return order_pb2.SubmitRequest(intent=base)


def test_a_poison_decision_time_is_refused_and_the_order_book_stays_readable(order, control):
    poisoned = intent("poison-1", decision_time=POISON)
    refused(order.Submit, poisoned, "decision_time 9999-12-31T23:59:59.999999+00:00 is not before 2100-01-01")
    refused(order.Submit, poisoned, "decision_time")  # a retry of that id: the same answer, not a stored order
    refused(order.GetOrder, order_pb2.GetOrderRequest(client_order_id="poison-1"), code=grpc.StatusCode.NOT_FOUND)
    assert order.GetOrder(order_pb2.GetOrderRequest(order_id=KNOWN_ORDER), timeout=30).order.order_id == KNOWN_ORDER
    order.ListOrders(order_pb2.ListOrdersRequest(), timeout=30)
    order.ListOrders(order_pb2.ListOrdersRequest(strategy_slug="fuzz_probe", states=[order_pb2.ORDER_STATE_NEW]),
                     timeout=30)


@pytest.mark.parametrize("field", ["strategy_slug", "note", "account"])
def test_a_nul_byte_in_a_submit_string_is_invalid_argument(order, control, field):
    details = refused(order.Submit, intent(f"nul-{field}", **{field: "ma\x00cross"}), field)
    assert "\\x00" in details or "U+0000" in details


@pytest.mark.parametrize("call, request_", [
    ("GetOrder", order_pb2.GetOrderRequest(order_id="ord-1\x00")),
    ("GetOrder", order_pb2.GetOrderRequest(client_order_id="c\x00")),
    ("ListOrders", order_pb2.ListOrdersRequest(page_token="ord-\x00")),
    ("ListOrders", order_pb2.ListOrdersRequest(strategy_slug="a\x00")),
    ("Cancel", order_pb2.CancelRequest(order_id="ord-1\x00")),
    ("Cancel", order_pb2.CancelRequest(client_order_id="c\x00")),
    ("Cancel", order_pb2.CancelRequest(order_id=KNOWN_ORDER, reason="why\x00")),
])
def test_a_nul_byte_in_an_order_id_or_reason_is_invalid_argument(order, call, request_):
    details = refused(getattr(order, call), request_)
    assert "\\x00" in details or "U+0000" in details


@pytest.mark.parametrize("field, text, words", [
    ("quantity", "1e999999", "1,000,000 digits before the decimal point"),
    ("quantity", "1e-16384", "16,384 digits after the decimal point"),
    ("quantity", "1e-999999", "999,999 digits after the decimal point"),
    ("limit_price", "1e999999", "1,000,000 digits before the decimal point"),
    ("limit_price", "1e-16384", "16,384 digits after the decimal point"),
    ("limit_price", "1e-999999", "999,999 digits after the decimal point"),
    ("quantity", "١٢٣", "is not a decimal number in ASCII digits"),  # was accepted as 123
    ("quantity", "𝟙", "is not a decimal number in ASCII digits"),    # was accepted as 1
])
def test_decimals_the_database_cannot_store_or_that_are_not_ascii_are_invalid_argument(order, control, field,
                                                                                      text, words):
    limit = dict(order_type=order_pb2.ORDER_TYPE_LIMIT, time_in_force=order_pb2.TIME_IN_FORCE_GTC)
    fields = {**(limit if field == "limit_price" else {}), field: text}
    refused(order.Submit, intent(f"dec-{field}-{len(text)}", **fields), f"{field} {text!r}", words)


def test_an_order_id_beyond_int64_is_invalid_argument_in_cancel_and_as_a_page_token(order):
    huge = "ord-99999999999999999999"
    refused(order.Cancel, order_pb2.CancelRequest(order_id=huge, reason="x"), f"order_id {huge!r} is not an order id")
    refused(order.ListOrders, order_pb2.ListOrdersRequest(page_token=huge), f"page_token {huge!r}")


def test_an_unknown_account_is_refused_not_filled(order, control):
    refused(order.Submit, intent("acct-nope", account="nope"), "account 'nope' is not one this plane knows",
            "known: paper")
    refused(order.GetOrder, order_pb2.GetOrderRequest(client_order_id="acct-nope"), code=grpc.StatusCode.NOT_FOUND)


@pytest.mark.parametrize("slug", ["s" * 10_000, "ドル円", "ma_cross\n"])
def test_a_bad_strategy_slug_is_named_not_blamed_on_the_position_plane(order, control, slug):
    details = refused(order.Submit, intent(f"slug-{len(slug)}", strategy_slug=slug), "strategy_slug",
                      "is not a strategy slug")
    assert "risk.positions_unavailable" not in details and len(details) < 1000


def test_control_refuses_nul_bytes_and_a_slug_with_a_newline(control):
    refused(control.SetGlobalFlags, control_pb2.SetGlobalFlagsRequest(global_lock=True, reason="drill\x00"),
            "reason has the unprintable character U+0000")
    refused(control.SetStrategyFlags, control_pb2.SetStrategyFlagsRequest(slug="fuzz_probe", note="n\x00"),
            "note has the unprintable character U+0000")
    refused(control.SetStrategyFlags, control_pb2.SetStrategyFlagsRequest(slug="ok_slug\n", create_if_missing=True),
            "slug 'ok_slug\\n' is not a strategy slug")
    assert not control.GetFlags(control_pb2.GetFlagsRequest(), timeout=30).snapshot.global_lock


WINDOWS = [
    ({"since": Timestamp(seconds=PAST_9999)}, "since is not a valid timestamp: seconds 253,402,300,800"),
    ({"until": Timestamp(seconds=BEFORE_YEAR_1)}, "until is not a valid timestamp"),
    ({"since": Timestamp(seconds=10, nanos=-1)}, "since is not a valid timestamp: nanos -1"),
    ({"until": Timestamp(seconds=10, nanos=1_000_000_000)}, "until is not a valid timestamp: nanos 1,000,000,000"),
]


@pytest.mark.parametrize("bounds, words", WINDOWS)
def test_list_audit_and_equity_curve_refuse_times_outside_the_timestamp_range(fuzz_mesh, control, bounds, words):
    refused(control.ListAudit, control_pb2.ListAuditRequest(**bounds), words)
    position = position_pb2_grpc.PositionStub(fuzz_mesh.channels["position"])
    refused(position.GetEquityCurve, position_pb2.GetEquityCurveRequest(**bounds), words)


@pytest.mark.parametrize("rpc", every_rpc(), ids=str)
def test_undecodable_bytes_are_invalid_argument_on_every_rpc(fuzz_mesh, rpc):
    channel = fuzz_mesh.channels[rpc.plane]
    garbage = b"\xff\xff\xff\xff"  # field 0x1fffffff of wire type 7: no protobuf message starts like this
    with pytest.raises(grpc.RpcError) as error:
        if rpc.streaming:
            next(channel.unary_stream(rpc.path)(garbage, timeout=30))
        else:
            channel.unary_unary(rpc.path)(garbage, timeout=30)
    assert error.value.code() == INVALID, (error.value.code(), error.value.details())
    assert "is not a valid protobuf message" in error.value.details()


def test_a_published_tick_with_a_poison_time_or_exotic_digits_is_refused(fuzz_mesh):
    market = market_data_pb2_grpc.MarketDataStub(fuzz_mesh.channels["market_data"])
    good = PLAUSIBLE["quantmesh.market_data.v1.PublishTicksRequest"][0].ticks[0]
    for fields, words in [({"time": POISON}, "ticks[0].time 9999-12-31T23:59:59.999999+00:00 is not before"),
                          ({"bid": "١٢٣"}, "ticks[0].bid '١٢٣' is not a positive finite decimal")]:
        tick = md.Tick()
        tick.CopyFrom(good)
        for name, value in fields.items():
            getattr(tick, name).CopyFrom(value) if isinstance(value, Timestamp) else setattr(tick, name, value)
        refused(market.PublishTicks, md.PublishTicksRequest(ticks=[tick]), words)
