"""Performance figures over a run of closed trades, exactly as the contract defines them.

Money (net PnL, gross profit and loss, commission, drawdown) is summed exactly in Decimal;
the ratios (win rate, expectancy, profit factor, Sharpe) are analytics and come out as floats:

- a win is a trade with a positive net PnL, a loss one with a negative net PnL;
- win rate = wins / trades; expectancy = net PnL / trades (0 without trades);
- profit factor = gross profit / gross loss (None when no trade lost);
- Sharpe = mean / sample standard deviation of the trades' net PnL, per trade and not
  annualised (None with fewer than two trades, or when every trade made the same);
- max drawdown = the largest fall of the cumulative net PnL from its running peak, the
  peak starting at 0 (so a first losing trade is a drawdown).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.analysis.trades import Trade

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    trades: int = 0
    wins: int = 0
    losses: int = 0
    net_pnl: Decimal = _ZERO
    gross_profit: Decimal = _ZERO
    gross_loss: Decimal = _ZERO  # a positive amount
    commission: Decimal = _ZERO
    max_drawdown: Decimal = _ZERO
    sharpe: float | None = None

    @property
    def win_rate(self) -> float:
        return self.wins / self.trades if self.trades else 0.0

    @property
    def expectancy(self) -> float:
        return float(self.net_pnl / self.trades) if self.trades else 0.0

    @property
    def profit_factor(self) -> float | None:
        return float(self.gross_profit / self.gross_loss) if self.gross_loss else None


def figures(trades: Sequence[Trade]) -> Figures:
    nets = [t.net_pnl for t in trades]
    cumulative = peak = drawdown = _ZERO
    for net in nets:
        cumulative += net
        peak = max(peak, cumulative)
        drawdown = max(drawdown, peak - cumulative)
    sharpe = None
    if len(nets) >= 2:
        spread = statistics.stdev(nets)
        if spread > 0:
            sharpe = float(statistics.fmean(float(n) for n in nets) / float(spread))
    return Figures(trades=len(nets), wins=sum(1 for n in nets if n > 0), losses=sum(1 for n in nets if n < 0),
                   net_pnl=sum(nets, _ZERO), gross_profit=sum((n for n in nets if n > 0), _ZERO),
                   gross_loss=-sum((n for n in nets if n < 0), _ZERO),
                   commission=sum((t.commission for t in trades), _ZERO), max_drawdown=drawdown, sharpe=sharpe)


@dataclass(frozen=True, slots=True, kw_only=True)
class Performance:
    strategy: str
    instrument: str
    overall: Figures
    rolling: Figures
    rolling_trades: int
    trades: tuple[Trade, ...]


def performance(strategy: str, instrument: str, trades: Sequence[Trade], *, rolling_trades: int) -> Performance:
    """Overall figures and the figures of the latest `rolling_trades` trades (trades oldest first)."""
    return Performance(strategy=strategy, instrument=instrument, overall=figures(trades),
                       rolling=figures(trades[-rolling_trades:]), rolling_trades=rolling_trades, trades=tuple(trades))


__all__ = ["Figures", "Performance", "figures", "performance"]
