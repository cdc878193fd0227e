"""`quantmesh backtest --policy`: the analysis plane's allocation policy, walk-forward, in the event path.

Checked against a recomputation that does not use the analysis plane's code: round trips from
the backtest's own fills with services/backtest/trades.py (average-cost, another module), the
rule written out here, and the entry sizes the order engine filled.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal

import pytest

from services.analysis.config import AnalysisSettings
from services.analysis.policy import PolicyLimits
from services.backtest.data import MarketData
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.backtest.policy import PolicyReplay
from services.backtest.trades import round_trips
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.strategies.registry import load_strategy
from tests.support.data import bar_spec

PARAMS = {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3", "take_profit_pips": "4",
          "max_hold_minutes": "7", "units": "10000"}
# The regime does not count here (factor 1), so each allocation follows from the trades alone.
LIMITS = PolicyLimits(min_trades=4, min_multiplier=Decimal("0.25"), max_multiplier=Decimal("1.5"),
                      step=Decimal("0.25"), off_profit_factor=Decimal("0.5"), high_volatility_factor=Decimal(1),
                      off_minutes=60)
ROLLING = 6
NO_LIMITS = RiskLimits(max_order_quantity=Decimal(10**9), max_position_per_instrument=Decimal(10**9),
                       max_position_per_strategy=Decimal(10**9), max_consecutive_losses=10**6,
                       max_orders_per_second=10**9)


def expected(nets: list[Decimal], off: bool) -> tuple[Decimal, bool] | None:
    """The documented rule by hand, on the judged trades' net PnL: None (no change) below min_trades
    unless entries are off (then probation at 0.25); entries off when losing with a profit factor
    below 0.5; else the profit factor floored to a quarter, within 0.25 and 1.5."""
    window = nets[-ROLLING:]
    if len(window) < LIMITS.min_trades:
        return (Decimal("0.25"), True) if off else None
    profit, loss = sum(n for n in window if n > 0), -sum(n for n in window if n < 0)
    if loss and sum(window) < 0 and profit / loss < Decimal("0.5"):
        return Decimal("0.25"), False
    base = profit / loss if loss else Decimal("1.5")
    return min(max((base / Decimal("0.25")).to_integral_value(ROUND_FLOOR) * Decimal("0.25"), Decimal("0.25")),
               Decimal("1.5")), True


@pytest.fixture(scope="module")
async def replayed():
    strategy = load_strategy("ma_cross", PARAMS)
    policy = PolicyReplay("ma_cross", "USD_JPY", AnalysisSettings(rolling_trades=ROLLING, limits=LIMITS),
                          timeframes=("M1",), decision_timeframe="M1")
    settings = BacktestSettings(limits=NO_LIMITS, paper=PaperSettings(commission_rate=Decimal("0.00002")))
    data = MarketData(bar_spec(), "USD_JPY")
    start, end = datetime(2013, 2, 5, tzinfo=timezone.utc), datetime(2013, 2, 6, tzinfo=timezone.utc)
    result = await InProcessBacktest(strategy, settings, policy=policy).run(data.ticks(start, end))
    return policy, result


def test_each_allocation_follows_from_the_trades_closed_before_it(replayed):
    policy, result = replayed
    assert len(policy.changes) >= 3, "a day of a 3/8 cross with tight exits moves the allocation"
    allocations = [(c.settings.allocation.size_multiplier, c.settings.allocation.entries_enabled)
                   for c in policy.changes]
    assert (Decimal("0.25"), False) in allocations and (Decimal("0.25"), True) in allocations, \
        "entries went off, cooled down and came back on probation"
    previous, off_since = None, None  # the allocation in force, and when entries last went off
    for change in policy.changes:
        if off_since is not None and previous is not None and not previous.settings.allocation.entries_enabled:
            assert change.time >= off_since + timedelta(minutes=LIMITS.off_minutes), "off for its cool-down"
        trades, _ = round_trips([f for f in result.fills if f.time < change.time])
        judged = [t.net_pnl for t in trades if off_since is None or t.exit_time > off_since]
        off = previous is not None and not previous.settings.allocation.entries_enabled
        allocation = change.settings.allocation
        assert expected(judged, off) == (allocation.size_multiplier, allocation.entries_enabled), change
        assert change.settings.version == change.settings.allocation_version == len(policy.changes[
            :policy.changes.index(change) + 1])
        if not allocation.entries_enabled:
            off_since = change.time
        previous = change


def test_entries_are_sized_by_the_allocation_in_force_when_decided(replayed):
    policy, result = replayed
    entries = [d for d in result.decisions if d.action == "enter"]
    skipped = [d for d in result.decisions if d.action == "skip" and "entries off" in d.reason]
    fills = {f.time: f for f in result.fills}
    assert entries
    for decision in entries:
        in_force = [c for c in policy.changes if c.time <= decision.time]
        multiplier = in_force[-1].settings.allocation.size_multiplier if in_force else Decimal(1)
        assert in_force or "by allocation" not in decision.reason
        if in_force and multiplier != 1:
            assert f"(size x{multiplier.normalize():f} by allocation v{in_force[-1].settings.version})" in decision.reason
        opening = [f for t, f in fills.items() if t > decision.time]
        assert opening and opening[0].quantity in (Decimal(10000) * multiplier, Decimal(20000) * multiplier) \
            or not opening
    off = [c for c in policy.changes if not c.settings.allocation.entries_enabled]
    assert not off or skipped, "entries off: the ENTRY worker skips, and says why"
