"""Planning flag changes: field changes, versions, validation (pure domain)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import Aborted, InvalidArgument, NotFound
from services.control.state import (ABSENT, FlagState, GlobalChange, StrategyChange, StrategyFlagState, TradingState,
                                    audit_query, plan_global, plan_strategy)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(minutes=5)


def state(**values) -> FlagState:
    base = dict(version=4, global_entry_enabled=True, global_exit_enabled=True, global_lock=False, updated_time=T0)
    return FlagState(**{**base, **values})


def test_trading_state_adds_up_the_global_flags():
    assert state().trading_state is TradingState.ACTIVE
    assert state(global_entry_enabled=False).trading_state is TradingState.REDUCING
    assert state(global_entry_enabled=False, global_lock=True).trading_state is TradingState.HALTED


def test_global_change_lists_only_changed_fields_and_bumps_the_version_by_one():
    plan = plan_global(state(), GlobalChange(global_lock=True, global_exit_enabled=True, reason="drill"), T1)
    assert [(c.flag, c.old_value, c.new_value) for c in plan.changes] == [("global_lock", "false", "true")]
    assert plan.after.version == 5 and plan.after.global_lock and plan.after.updated_time == T1


def test_global_change_that_changes_nothing_plans_nothing():
    assert plan_global(state(global_lock=True), GlobalChange(global_lock=True, reason="again"), T1).changes_nothing
    assert plan_global(state(), GlobalChange(), T1).changes_nothing


@pytest.mark.parametrize("lock", [True, False])
def test_lock_and_unlock_need_a_reason(lock):
    with pytest.raises(InvalidArgument, match="reason is required"):
        plan_global(state(global_lock=not lock), GlobalChange(global_lock=lock, reason=""), T1)


def test_too_long_reason_is_refused():
    with pytest.raises(InvalidArgument, match="at most 500"):
        plan_global(state(), GlobalChange(global_entry_enabled=False, reason="x" * 501), T1)


def test_stale_expected_version_is_aborted_and_zero_means_no_check():
    with pytest.raises(Aborted, match="expected_version 3 is not the current version 4"):
        plan_global(state(), GlobalChange(global_entry_enabled=False, expected_version=3), T1)
    assert plan_global(state(), GlobalChange(global_entry_enabled=False, expected_version=0), T1).after.version == 5
    assert plan_global(state(), GlobalChange(global_entry_enabled=False, expected_version=4), T1).after.version == 5


def test_unknown_strategy_is_not_found_unless_created():
    with pytest.raises(NotFound, match="create_if_missing"):
        plan_strategy(state(), StrategyChange(slug="ma_cross", entry_enabled=False), T1)
    plan = plan_strategy(state(), StrategyChange(slug="ma_cross", exit_enabled=False, create_if_missing=True), T1)
    assert plan.created and plan.after.version == 5
    assert plan.strategy == StrategyFlagState(slug="ma_cross", entry_enabled=True, exit_enabled=False, updated_time=T1)
    assert [(c.flag, c.old_value, c.new_value) for c in plan.changes] == [
        ("entry_enabled", ABSENT, "true"), ("exit_enabled", ABSENT, "false")]


def test_strategy_change_keeps_slug_order_and_other_strategies():
    current = state(strategies=(StrategyFlagState(slug="a", updated_time=T0), StrategyFlagState(slug="z", updated_time=T0)))
    plan = plan_strategy(current, StrategyChange(slug="m", create_if_missing=True), T1)
    assert [s.slug for s in plan.after.strategies] == ["a", "m", "z"]
    plan = plan_strategy(plan.after, StrategyChange(slug="z", note="why"), T1)
    assert [(c.slug, c.flag, c.old_value, c.new_value) for c in plan.changes] == [("z", "note", "", "why")]
    assert plan.after.strategy("a").updated_time == T0
    assert plan_strategy(plan.after, StrategyChange(slug="z", note="why", entry_enabled=True), T1).changes_nothing


@pytest.mark.parametrize("slug", ["", "Upper", "dash-ed", "x" * 65, "sp ace"])
def test_malformed_slug(slug):
    with pytest.raises(InvalidArgument, match="lowercase letters"):
        plan_strategy(state(), StrategyChange(slug=slug, create_if_missing=True), T1)


def test_audit_query_defaults_and_tokens():
    query = audit_query(actor="", slug="", flag="", since=None, until=None, limit=0, page_token="")
    assert (query.limit, query.before_id) == (100, None)
    assert audit_query(actor="", slug="", flag="note", since=None, until=None, limit=5,
                       page_token="before:42").before_id == 42
    with pytest.raises(InvalidArgument, match="global_entry_enabled"):
        audit_query(actor="", slug="", flag="lock", since=None, until=None, limit=0, page_token="")
    with pytest.raises(InvalidArgument, match="page_token"):
        audit_query(actor="", slug="", flag="", since=None, until=None, limit=0, page_token="before:x")
