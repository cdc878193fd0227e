"""The allocation policy: how much of its size a strategy should trade, from its recent trades
and the market's regime. Pure, so the analysis plane and a walk-forward backtest run the same rule.

The rule, on the figures of the strategy's latest closed trades (its rolling window):

1. fewer than `min_trades` trades: not enough to judge, no recommendation (the allocation
   stays as it is);
2. losing (expectancy below 0) with a profit factor below `off_profit_factor`: entries off
   (exits always run);
3. otherwise the base size is the profit factor (a strategy earning 1.3 for each 1 it loses
   trades 1.3 times its size; one that never lost, the most the limits allow);
4. in a HIGH volatility regime the base is multiplied by `high_volatility_factor`;
5. the result is rounded down to a multiple of `step` and kept within
   [`min_multiplier`, `max_multiplier`].

A recommendation changes a strategy's settings only when its effect differs (multiplier or
on/off), never for new words; and never for a strategy an operator has frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from services.analysis.performance import Figures
from services.analysis.ranges import Regime
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

    def __post_init__(self) -> None:
        if not Decimal(0) < self.min_multiplier <= self.max_multiplier:
            raise ValueError(f"the multiplier limits must satisfy 0 < min ({self.min_multiplier}) <= max "
                             f"({self.max_multiplier})")
        if self.step <= 0 or self.min_trades < 1 or self.off_profit_factor < 0 or self.high_volatility_factor <= 0:
            raise ValueError("step and the volatility factor must be positive, min_trades at least 1, "
                             "off_profit_factor not negative")


def _text(number: Decimal) -> str:
    return trimmed_decimal_text(number)


def recommend(rolling: Figures, regime: Regime, limits: PolicyLimits) -> Allocation | None:
    """The allocation the policy recommends for a strategy with these rolling figures in this regime;
    None while it has too few trades to judge."""
    if rolling.trades < limits.min_trades:
        return None
    window = f"latest {rolling.trades} trades"
    factor = rolling.gross_profit / rolling.gross_loss if rolling.gross_loss else None
    expectancy = rolling.net_pnl / rolling.trades
    if expectancy < 0 and factor is not None and factor < limits.off_profit_factor:
        return Allocation(size_multiplier=limits.min_multiplier, entries_enabled=False,
                          reason=f"{window} lose: expectancy {expectancy:.2f}, profit factor {factor:.2f} is "
                                 f"below {_text(limits.off_profit_factor)}: entries off")
    if factor is None:
        base, why = limits.max_multiplier, f"{window}: no losing trade"
    else:
        base, why = factor, f"{window}: profit factor {factor:.2f}"
    if regime is Regime.HIGH:
        base *= limits.high_volatility_factor
        why += f"; high volatility x{_text(limits.high_volatility_factor)}"
    stepped = (base / limits.step).to_integral_value(rounding=ROUND_FLOOR) * limits.step
    multiplier = min(max(stepped, limits.min_multiplier), limits.max_multiplier)
    return Allocation(size_multiplier=multiplier.normalize(), entries_enabled=True,
                      reason=f"{why}: size x{_text(multiplier)}")


__all__ = ["PolicyLimits", "recommend"]
