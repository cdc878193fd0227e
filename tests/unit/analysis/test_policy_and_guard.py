"""The allocation policy's rule, the policy guard's transitions and a worker's sizing, case by case."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.analysis.performance import Figures
from services.analysis.policy import PolicyLimits, judged_trades, recommend
from services.analysis.ranges import Regime
from services.analysis.settings import ParamsRefused, with_allocation, with_freeze, with_params
from services.common.errors import FailedPrecondition
from services.common.strategy_settings import FULL_SIZE, Allocation, StrategySettings
from services.strategies.desk import Decision, IntentDraft
from services.strategies.registry import load_strategy
from services.strategies.tuning import Applied, CatalogueRules, Tuning, sized_entry

NOW = datetime(2026, 1, 5, 9, tzinfo=timezone.utc)
LIMITS = PolicyLimits(min_trades=10)


def rolling(trades: int, profit: str, loss: str) -> Figures:
    net = Decimal(profit) - Decimal(loss)
    return Figures(trades=trades, wins=1, losses=1, net_pnl=net, gross_profit=Decimal(profit), gross_loss=Decimal(loss))


@pytest.mark.parametrize(("figures", "regime", "multiplier", "enabled"), [
    (rolling(20, "1300", "1000"), Regime.UNKNOWN, "1.3", True),     # regime not known yet: performance alone
    (rolling(20, "1300", "1000"), Regime.NORMAL, "1.3", True),      # size follows the profit factor
    (rolling(20, "1234", "1000"), Regime.NORMAL, "1.2", True),      # rounded down to the step
    (rolling(20, "1300", "1000"), Regime.HIGH, "0.65", True),       # halved in high volatility
    (rolling(20, "9000", "1000"), Regime.LOW, "1.5", True),         # capped at the maximum
    (rolling(20, "900", "0"), Regime.NORMAL, "1.5", True),          # never lost: the maximum
    (rolling(20, "750", "1000"), Regime.NORMAL, "0.75", True),      # losing, factor above the off level
    (rolling(20, "100", "1000"), Regime.NORMAL, "0.25", False),     # losing below 0.7: entries off
    (rolling(20, "300", "1000"), Regime.LOW, "0.25", False),
])
def test_the_policy_rule(figures, regime, multiplier, enabled):
    got = recommend(figures, regime, LIMITS, current=FULL_SIZE, now=NOW)
    assert (got.size_multiplier, got.entries_enabled) == (Decimal(multiplier), enabled), got.reason
    assert got.reason and got.judged_since == (None if enabled else NOW)  # off: only later trades count


def test_too_few_trades_to_judge_recommend_nothing():
    assert recommend(rolling(9, "5000", "100"), Regime.HIGH, LIMITS, current=FULL_SIZE, now=NOW) is None


def test_entries_off_cool_down_then_go_on_probation_and_are_judged_on_later_trades_only():
    off = recommend(rolling(20, "100", "1000"), Regime.NORMAL, LIMITS, current=FULL_SIZE, now=NOW)
    assert not off.entries_enabled and off.judged_since == NOW
    early = NOW + timedelta(minutes=LIMITS.off_minutes - 1)
    assert recommend(rolling(0, "0", "0"), Regime.NORMAL, LIMITS, current=off, now=early) is None
    later = NOW + timedelta(minutes=LIMITS.off_minutes)
    probation = recommend(rolling(0, "0", "0"), Regime.HIGH, LIMITS, current=off, now=later)
    assert (probation.size_multiplier, probation.entries_enabled, probation.judged_since) == (Decimal("0.25"), True, NOW)
    assert recommend(rolling(3, "0", "300"), Regime.NORMAL, LIMITS, current=probation, now=later) is None
    judged = recommend(rolling(10, "1300", "1000"), Regime.NORMAL, LIMITS, current=probation, now=later)
    assert (judged.size_multiplier, judged.judged_since) == (Decimal("1.3"), NOW)
    trades = [type("T", (), {"closed_time": NOW + timedelta(minutes=m)})() for m in (-5, 0, 5, 10)]
    assert [t.closed_time for t in judged_trades(trades, probation, 1)] == [NOW + timedelta(minutes=10)]
    assert len(judged_trades(trades, probation, 20)) == 2 and len(judged_trades(trades, FULL_SIZE, 20)) == 4


def settings(**changes) -> StrategySettings:
    return StrategySettings(slug="ma_cross", **changes)


def test_params_only_inside_the_declared_bounds_with_a_sentence():
    base = {"fast_period": "3", "slow_period": "8"}
    changed = with_params(settings(), {"fast_period": "5"}, (), rules=CatalogueRules(), base=base, actor="ops",
                          reason="r", now=NOW)
    assert (changed.version, changed.params_version, dict(changed.params)) == (1, 1, {"fast_period": "5"})
    for bad, words in [({"fast_period": "51"}, "must be between 2 and 50"),
                       ({"warmup_bars": "20"}, "cannot be changed while it runs"),
                       ({"fast_period": "8"}, r"must be below 'slow_period' \(8\)")]:
        with pytest.raises(ParamsRefused, match=words):
            with_params(changed, bad, (), rules=CatalogueRules(), base=base, actor="ops", reason="r", now=NOW)
    again = with_params(changed, {"fast_period": "5"}, (), rules=CatalogueRules(), base=base, actor="ops", reason="r",
                        now=NOW)
    assert again is changed  # no new version for no change
    back = with_params(changed, {}, ("fast_period",), rules=CatalogueRules(), base=base, actor="ops", reason="r",
                       now=NOW)
    assert (back.version, dict(back.params)) == (2, {})


def test_a_frozen_strategy_ignores_recommendations_and_refuses_params():
    off = Allocation(size_multiplier=Decimal("0.25"), entries_enabled=False, reason="losing")
    frozen = with_freeze(settings(version=3), True, actor="ops", reason="earnings week", now=NOW)
    assert frozen.version == 4 and frozen.frozen
    assert with_allocation(frozen, off, now=NOW) is frozen
    with pytest.raises(FailedPrecondition, match="is frozen"):
        with_params(frozen, {"fast_period": "5"}, (), rules=CatalogueRules(), base={}, actor="ops", reason="r", now=NOW)
    thawed = with_freeze(frozen, False, actor="ops", reason="done", now=NOW)
    applied = with_allocation(thawed, off, now=NOW)
    assert (applied.version, applied.allocation_version, applied.allocation.entries_enabled) == (6, 6, False)
    assert with_allocation(applied, Allocation(size_multiplier=Decimal("0.25"), entries_enabled=False,
                                               reason="other words"), now=NOW) is applied


def draft(quantity: str) -> tuple[Decision, IntentDraft]:
    decision = Decision(time=NOW, action="enter", reason="crossed", instrument="USD_JPY", client_order_id="c1")
    return decision, IntentDraft(client_order_id="c1", slug="ma_cross", role="entry", instrument="USD_JPY", side="buy",
                                 quantity=Decimal(quantity), limit_price=None, reduce_only=False, note="crossed")


def test_an_entry_is_sized_by_the_allocation_and_rounded_down_to_its_own_precision():
    strategy = load_strategy("ma_cross", {})
    half = Applied(strategy, 0, Allocation(size_multiplier=Decimal("0.33"), reason="r"), 4)
    decision, sized = sized_entry(*draft("10000"), half)
    assert sized.quantity == Decimal(3300) and "x0.33 by allocation v4" in decision.reason
    assert sized_entry(*draft("0.03"), Applied(strategy, 0, Allocation(size_multiplier=Decimal("0.5")), 1))[1].quantity \
        == Decimal("0.01")
    decision, none = sized_entry(*draft("0.01"), Applied(strategy, 0, Allocation(size_multiplier=Decimal("0.25")), 1))
    assert none is None and decision.action == "skip" and decision.client_order_id == ""
    off = Applied(strategy, 0, Allocation(size_multiplier=Decimal(1), entries_enabled=False, reason="losing"), 2)
    decision, none = sized_entry(*draft("10000"), off)
    assert none is None and decision.action == "skip" and "entries off (losing)" in decision.reason


class Source:
    def __init__(self, settings: StrategySettings | None = None) -> None:
        self.settings = settings

    def latest(self):
        return self.settings


def test_a_worker_applies_a_new_version_at_its_next_decision_and_refuses_what_it_cannot_hold():
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    source = Source()
    tuning = Tuning(strategy, source)
    assert tuning.at_decision().strategy is strategy
    source.settings = settings(version=1, params={"fast_period": "5"}, params_version=1)
    applied = tuning.at_decision()
    assert (applied.strategy.params.fast_period, applied.strategy.params.slow_period, applied.params_version) == (5, 8, 1)
    assert tuning.at_decision().strategy is applied.strategy  # rebuilt once per version
    # A version outside the bounds is refused with a sentence; the params it has stay, the allocation applies.
    source.settings = settings(version=3, params={"fast_period": "60"}, params_version=3,
                               allocation=Allocation(size_multiplier=Decimal("0.5")), allocation_version=3)
    applied = tuning.at_decision()
    assert (applied.params_version, applied.allocation_version, applied.allocation.size_multiplier) == (1, 3, Decimal("0.5"))
    assert "must be between 2 and 50" in tuning.problem
    source.settings = settings(version=4, allocation=Allocation(size_multiplier=Decimal(50)), allocation_version=4)
    applied = tuning.at_decision()
    assert applied.allocation_version == 3 and "outside what a worker accepts" in tuning.problem
    assert applied.params_version == 0 and applied.strategy.params.fast_period == 3  # params back to the start
