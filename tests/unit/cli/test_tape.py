"""The tape's lines: one per order placed, filled, refused or canceled and per flag change."""

from __future__ import annotations

from quantmesh.common.v1 import common_pb2
from quantmesh.control.v1 import control_pb2
from quantmesh.order.v1 import order_pb2
from services.cli.tape import OrderLines, amount, fill_line, flag_changes, flags_line

INTENT = order_pb2.OrderIntent(client_order_id="c-1", strategy_slug="ma_cross", role=common_pb2.STRATEGY_ROLE_ENTRY,
                               instrument="USD_JPY", side=common_pb2.SIDE_BUY, quantity="10000",
                               order_type=order_pb2.ORDER_TYPE_MARKET)


def order(state: int, **fields) -> order_pb2.OrderRecord:
    return order_pb2.OrderRecord(order_id="ord-7", intent=INTENT, state=state, **fields)


def test_amounts_have_thousands_separators_and_never_an_exponent():
    assert [amount(t) for t in ("10000", "1E+4", "-12000.50", "0.5", "93.123", "")] == \
           ["10,000", "10,000", "-12,000.50", "0.5", "93.123", ""]


def test_an_order_is_placed_once_whatever_states_follow():
    lines = OrderLines()
    said = [lines.line(order(state)) for state in (order_pb2.ORDER_STATE_PENDING_SUBMIT, order_pb2.ORDER_STATE_SUBMITTED,
                                                   order_pb2.ORDER_STATE_NEW, order_pb2.ORDER_STATE_FILLED)]
    assert said[:2] == [None, None] and said[3] is None
    assert said[2] == "placed    ma_cross.entry       BUY 10,000 USD_JPY market  (order ord-7)"


def test_an_order_filled_at_once_is_still_said_to_be_placed():
    assert OrderLines().line(order(order_pb2.ORDER_STATE_FILLED)).startswith("placed    ma_cross.entry")


def test_a_refusal_names_the_rule_and_the_reason():
    line = OrderLines().line(order(order_pb2.ORDER_STATE_REJECTED, reject_rule="guard.halted",
                                   reason="the global lock is on"))
    assert line == "refused   ma_cross.entry       BUY 10,000 USD_JPY market: guard.halted: the global lock is on"


def test_a_fill_names_its_price_and_the_market_time():
    fill = order_pb2.Fill(order_id="ord-7", strategy_slug="ma_cross", instrument="USD_JPY", side=common_pb2.SIDE_SELL,
                          quantity="1E+4", price="93.123", commission="150")
    fill.time.FromJsonString("2013-02-04T09:15:45Z")
    assert fill_line(fill) == ("filled    ma_cross             SELL 10,000 USD_JPY @ 93.123  (order ord-7, "
                               "commission 150; market time 2013-02-04 09:15:45)")


def snapshot(version: int, **flags) -> control_pb2.FlagSnapshot:
    base = {"global_entry_enabled": True, "global_exit_enabled": True, "lock_cancels_open_orders": True,
            "state": control_pb2.TRADING_STATE_ACTIVE}
    return control_pb2.FlagSnapshot(version=version, **{**base, **flags})


def test_flag_changes_in_words():
    active, halted = snapshot(1), snapshot(2, global_lock=True, state=control_pb2.TRADING_STATE_HALTED)
    assert flag_changes(None, active) == []  # nothing to say about a plain ACTIVE start
    assert flag_changes(active, halted) == ["global lock ON (open orders canceled)"]
    assert flag_changes(halted, snapshot(3)) == ["global lock off"]
    reviewed = snapshot(4, strategies=[control_pb2.StrategyFlags(slug="ma_cross", entry_enabled=False,
                                                                 exit_enabled=True)])
    assert flag_changes(active, reviewed) == ["ma_cross entries OFF", "ma_cross exits on"]
    assert flag_changes(None, snapshot(5, global_entry_enabled=False)) == ["entries OFF"]


def test_a_flags_line_says_who_and_why_from_the_audit():
    halted = snapshot(2, global_lock=True, state=control_pb2.TRADING_STATE_HALTED)
    audit = [control_pb2.AuditEntry(version=2, actor="alice", reason="drill")]
    assert flags_line(["global lock ON (open orders canceled)"], halted, audit) == \
           'flags     v2 HALTED: global lock ON (open orders canceled) by alice: "drill"'
