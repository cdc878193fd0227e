"""FlagView.verdict: every guard rule, as the order plane and the workers see it."""

from __future__ import annotations

import pytest

from quantmesh.control.v1 import control_pb2 as pb
from services.common.flags import FlagView, GuardVerdict, StrategyFlagView


def view(**flags) -> FlagView:
    strategies = flags.pop("strategies", {})
    return FlagView(version=7, strategies=strategies, **flags)


def rule(v: FlagView, slug: str, role: str, reduces: bool) -> str | None:
    verdict = v.verdict(slug, role, reduces)
    assert isinstance(verdict, GuardVerdict) and verdict.reason
    return None if verdict.allowed else verdict.rule


@pytest.mark.parametrize("role, reduces", [("entry", False), ("entry", True), ("exit", True), ("exit", False)])
def test_active_allows_everything(role, reduces):
    v = view()
    assert v.state == "ACTIVE"
    assert rule(v, "ma_cross", role, reduces) is None


@pytest.mark.parametrize("role, reduces", [("entry", False), ("entry", True), ("exit", True), ("exit", False)])
def test_halted_refuses_every_new_order_even_reducing_ones(role, reduces):
    v = view(global_lock=True, global_entry_enabled=True, global_exit_enabled=True)
    assert v.state == "HALTED"
    assert rule(v, "ma_cross", role, reduces) == "guard.halted"
    assert "HALTED" in v.verdict("ma_cross", role, reduces).reason


def test_halted_wins_over_every_other_rule():
    v = view(global_lock=True, global_entry_enabled=False, global_exit_enabled=False,
             strategies={"ma_cross": StrategyFlagView(slug="ma_cross", entry_enabled=False, exit_enabled=False)})
    assert rule(v, "ma_cross", "exit", True) == "guard.halted"


def test_reducing_lets_only_position_reducing_orders_through():
    v = view(global_entry_enabled=False)
    assert v.state == "REDUCING"
    assert rule(v, "ma_cross", "entry", False) == "guard.reducing"
    assert rule(v, "ma_cross", "exit", False) == "guard.reducing"  # an exit that would flip the position
    assert rule(v, "ma_cross", "exit", True) is None
    assert rule(v, "ma_cross", "entry", True) is None  # reduces: the global rule lets it pass


def test_exits_disabled_holds_exits_but_not_entries():
    v = view(global_exit_enabled=False)
    assert v.state == "ACTIVE"
    assert rule(v, "ma_cross", "exit", True) == "guard.exits_disabled"
    assert rule(v, "ma_cross", "entry", False) is None


def test_strategy_flags_narrow_the_global_ones():
    v = view(strategies={
        "ma_cross": StrategyFlagView(slug="ma_cross", entry_enabled=False, exit_enabled=True, note="under review"),
        "breakout": StrategyFlagView(slug="breakout", entry_enabled=True, exit_enabled=False),
    })
    assert rule(v, "ma_cross", "entry", False) == "guard.strategy_entry_disabled"
    assert "under review" in v.verdict("ma_cross", "entry", False).reason
    assert rule(v, "ma_cross", "exit", True) is None
    assert rule(v, "breakout", "exit", True) == "guard.strategy_exit_disabled"
    assert rule(v, "breakout", "entry", False) is None


def test_global_refusal_comes_before_the_strategy_refusal():
    v = view(global_entry_enabled=False,
             strategies={"ma_cross": StrategyFlagView(slug="ma_cross", entry_enabled=False)})
    assert rule(v, "ma_cross", "entry", False) == "guard.reducing"
    v = view(global_exit_enabled=False,
             strategies={"ma_cross": StrategyFlagView(slug="ma_cross", exit_enabled=False)})
    assert rule(v, "ma_cross", "exit", True) == "guard.exits_disabled"


def test_unknown_strategy_has_both_flags_enabled():
    v = view(strategies={"ma_cross": StrategyFlagView(slug="ma_cross", entry_enabled=False, exit_enabled=False)})
    assert rule(v, "never_seen", "entry", False) is None
    assert rule(v, "never_seen", "exit", True) is None
    assert v.strategy("never_seen") == StrategyFlagView(slug="never_seen")


def test_unknown_role_is_a_programming_error():
    with pytest.raises(ValueError, match="'both'"):
        view().verdict("ma_cross", "both", False)


def test_from_proto_and_frozen():
    snapshot = pb.FlagSnapshot(version=12, global_entry_enabled=False, global_exit_enabled=True, global_lock=False,
                               state=pb.TRADING_STATE_REDUCING,
                               strategies=[pb.StrategyFlags(slug="ma_cross", entry_enabled=True, exit_enabled=False,
                                                            note="n")])
    v = FlagView.from_proto(snapshot)
    assert (v.version, v.state, v.global_lock) == (12, "REDUCING", False)
    assert v.strategies["ma_cross"] == StrategyFlagView(slug="ma_cross", entry_enabled=True, exit_enabled=False, note="n")
    assert v.updated_time is None
    with pytest.raises(AttributeError):
        v.global_lock = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        v.strategies["other"] = StrategyFlagView(slug="other")  # type: ignore[index]
