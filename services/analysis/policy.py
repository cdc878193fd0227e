"""The allocation policy: how much of its size a strategy should trade, from its recent trades
and the market's regime. Pure, so the analysis plane and a walk-forward backtest run the same rule.

The rule, on the figures of the strategy's latest closed trades (its rolling window), counting
only trades closed after the policy last turned its entries off (`Allocation.judged_since`):

1. entries off, and fewer than `off_minutes` since: no change (it cools down);
2. fewer than `min_trades` trades: not enough to judge. No recommendation (the allocation stays
   as it is), except for a strategy whose entries are off and whose cool-down is over: it goes
   on probation at `min_multiplier`, so it can make the trades it will be judged on;
3. losing (expectancy below 0) with a profit factor below `off_profit_factor`: entries off
   (exits always run), and from now on only later trades count;
4. otherwise the base size is the profit factor (a strategy earning 1.3 for each 1 it loses
   trades 1.3 times its size; one that never lost, the most the limits allow);
5. in a HIGH volatility regime the base is multiplied by `high_volatility_factor`;
6. the result is rounded down to a multiple of `step` and kept within
   [`min_multiplier`, `max_multiplier`].

Times are data times (the latest candle or fill the caller has seen), so a replay of old data
cools down as the live plane would have. A recommendation changes a strategy's settings only
when its effect differs (multiplier or on/off), never for new words; and never for a strategy
an operator has frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from services.analysis.performance import Figures
from services.analysis.ranges import Regime
from services.analysis.trades import Trade
from services.common.strategy_settings import Allocation
from services.common.wire import trimmed_decimal_text


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyLimits:
    min_multiplier: Decimal = Decimal("0.25")
    max_multiplier: Decimal = Decimal("1.5")
    step: Decimal = Decimal("0.05")
    min_trades: int = 10
    off_profit_factor: Decimal = Decimal("0.7")
    high_volatility_factor: Decimal = Decimal("0.5")
    off_minutes: int = 240

    def __post_init__(self) -> None:
        if not Decimal(0) < self.min_multiplier <= self.max_multiplier:
            raise ValueError(f"the multiplier limits must satisfy 0 < min ({self.min_multiplier}) <= max "
                             f"({self.max_multiplier})")
        if self.step <= 0 or self.min_trades < 1 or self.off_profit_factor < 0 or self.high_volatility_factor <= 0 \
                or self.off_minutes < 0:
            raise ValueError("step and the volatility factor must be positive, min_trades at least 1, "
                             "off_profit_factor and off_minutes not negative")


def _text(number: Decimal) -> str:
    return trimmed_decimal_text(number)


def recommend(judged: Figures, regime: Regime, limits: PolicyLimits, *, current: Allocation,
              now: datetime) -> Allocation | None:
    """What the policy recommends for a strategy whose judged trades (the latest ones closed after
    `current.judged_since`) have these figures, in this regime, at data time `now`; None: no change."""
    off = not current.entries_enabled
    if off and current.judged_since is not None and now < current.judged_since + timedelta(minutes=limits.off_minutes):
        return None
    if judged.trades < limits.min_trades:
        if not off:
            return None
        return Allocation(size_multiplier=limits.min_multiplier, entries_enabled=True, judged_since=current.judged_since,
                          reason=f"on probation at x{_text(limits.min_multiplier)} after {limits.off_minutes} minutes "
                                 f"off: {judged.trades} trade(s) since, fewer than the {limits.min_trades} it judges on")
    window = f"latest {judged.trades} trades"
    factor = judged.gross_profit / judged.gross_loss if judged.gross_loss else None
    expectancy = judged.net_pnl / judged.trades
    if expectancy < 0 and factor is not None and factor < limits.off_profit_factor:
        return Allocation(size_multiplier=limits.min_multiplier, entries_enabled=False, judged_since=now,
                          reason=f"{window} lose: expectancy {expectancy:.2f}, profit factor {factor:.2f} is "
                                 f"below {_text(limits.off_profit_factor)}: entries off for at least "
                                 f"{limits.off_minutes} minutes, then only later trades count")
    if factor is None:
        base, why = limits.max_multiplier, f"{window}: no losing trade"
    else:
        base, why = factor, f"{window}: profit factor {factor:.2f}"
    if regime is Regime.HIGH:
        base *= limits.high_volatility_factor
        why += f"; high volatility x{_text(limits.high_volatility_factor)}"
    stepped = (base / limits.step).to_integral_value(rounding=ROUND_FLOOR) * limits.step
    multiplier = min(max(stepped, limits.min_multiplier), limits.max_multiplier)
    return Allocation(size_multiplier=multiplier.normalize(), entries_enabled=True, judged_since=current.judged_since,
                      reason=f"{why}: size x{_text(multiplier)}")


def judged_trades(trades: Sequence[Trade], current: Allocation, rolling: int) -> list[Trade]:
    """The trades the policy judges: the latest `rolling` closed after `current.judged_since`."""
    since = current.judged_since
    return [t for t in trades if since is None or t.closed_time > since][-rolling:]


__all__ = ["PolicyLimits", "judged_trades", "recommend"]
