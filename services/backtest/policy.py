"""The analysis plane's allocation policy, replayed walk-forward in an in-process backtest
(`quantmesh backtest --policy`), so a policy is tested before it goes live.

`PolicyReplay` is the workers' settings source (services/strategies/tuning.py), as the
analysis plane's stream is live. It sees what the plane would have seen by then and nothing
later: each fill as the order engine books it, each closed candle of the analysis timeframe
(QUANTMESH_ANALYSIS_TIMEFRAME, or the decision timeframe when the backtest builds no such
candles). At each decision it recomputes, with the plane's own pure code, the strategy's
rolling figures (services/analysis/performance.py), the regime (ranges.py), the
recommendation (policy.py) and the new settings version (settings.py), under the same
QUANTMESH_ANALYSIS_* settings. Parameters are not replayed: only the allocation.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.analysis.config import AnalysisSettings, settings_from_env
from services.analysis.performance import figures
from services.analysis.policy import judged_trades, recommend
from services.analysis.ranges import RangeCandle, RangeTracker, Regime
from services.analysis.settings import with_allocation
from services.analysis.trades import FillRecord, TradeBook
from services.common.config import Env
from services.common.strategy_settings import StrategySettings
from services.strategies.sdk import Bar, Strategy


@dataclass(frozen=True, slots=True)
class AllocationChange:
    time: datetime
    settings: StrategySettings


class PolicyReplay:
    def __init__(self, slug: str, instrument: str, settings: AnalysisSettings, *, timeframes: tuple[str, ...],
                 decision_timeframe: str) -> None:
        self._settings = settings
        self._timeframe = settings.timeframe if settings.timeframe in timeframes else decision_timeframe
        self._trades = TradeBook()
        self._ranges = RangeTracker(instrument, settings.ranges)
        self._current = StrategySettings(slug=slug)
        self._fills = 0
        self._now: datetime | None = None
        self._stale = False
        self.changes: list[AllocationChange] = []

    # ---- what the plane would have seen ----------------------------------------------------

    def on_candle(self, bar: Bar) -> None:
        if bar.timeframe == self._timeframe:
            self._ranges.add(RangeCandle(instrument=bar.instrument, start=bar.start, end=bar.end, high=bar.mid.high,
                                         low=bar.mid.low, close=bar.mid.close, spread=bar.spread))
            self._now, self._stale = bar.end, True

    def on_fill(self, fill) -> None:
        """A fill as the order engine booked it (its strategy's fills only count)."""
        if fill.strategy_slug != self._current.slug:
            return
        self._fills += 1
        self._trades.apply(FillRecord(seq=self._fills, fill_id=fill.fill_id, client_order_id=fill.client_order_id,
                                      strategy=fill.strategy_slug, account=fill.account, instrument=fill.instrument,
                                      side=str(fill.side), quantity=fill.quantity, price=fill.price,
                                      commission=fill.commission, time=fill.time))
        self._stale = True

    # ---- the settings source ---------------------------------------------------------------

    def latest(self) -> StrategySettings:
        if self._stale:
            self._stale = False
            state, current = self._ranges.state, self._current.allocation
            judged = judged_trades(self._trades.closed, current, self._settings.rolling_trades)
            recommended = recommend(figures(judged), state.regime if state is not None else Regime.UNKNOWN,
                                    self._settings.limits, current=current, now=self._now)
            if recommended is not None:
                after = with_allocation(self._current, recommended, now=self._now)
                if after is not self._current:
                    self._current = after
                    self.changes.append(AllocationChange(self._now, after))
        return self._current


def replay_for(strategy: Strategy, env: Env) -> PolicyReplay:
    """The replay of `strategy` under the analysis settings of the environment (ConfigError if bad)."""
    return PolicyReplay(strategy.slug, strategy.params.instrument, settings_from_env(env),
                        timeframes=tuple(strategy.history_bars()), decision_timeframe=strategy.decision_timeframe)


def report(replay: PolicyReplay, folder: Path) -> None:
    """Prints what the policy did and writes <folder>/allocations.csv."""
    for line in describe(replay):
        print(line)
    write_allocations_csv(replay, folder / "allocations.csv")
    print(f"  allocations: {folder / 'allocations.csv'}")


def describe(replay: PolicyReplay) -> list[str]:
    """Lines for the backtest's report."""
    if not replay.changes:
        return ["  allocation policy: no change (too few trades to judge, or the same allocation throughout)"]
    last = replay.changes[-1].settings.allocation
    return [f"  allocation policy: {len(replay.changes)} changes, walk-forward; the last: {last.describe()} "
            f"({last.reason})"]


def write_allocations_csv(replay: PolicyReplay, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "version", "size_multiplier", "entries_enabled", "reason"])
        for change in replay.changes:
            allocation = change.settings.allocation
            writer.writerow([change.time.isoformat(), change.settings.version, allocation.size_multiplier,
                             allocation.entries_enabled, allocation.reason])


__all__ = ["AllocationChange", "PolicyReplay", "describe", "replay_for", "report", "write_allocations_csv"]
