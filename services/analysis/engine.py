"""The analysis plane's engine: fills into trades, candles into range metrics, both into the
allocation policy; signals and the pattern book through the repository; settings through the board.

What it learns it stores first (fills, market states) and only then counts, so a restart
rebuilds the same trades from the analysis schema and resumes each stream where it stopped.
The policy runs in a task of its own, woken by every new fill or candle: it recomputes
every strategy's recommendation and, with policy "apply", hands each to the board (which
ignores frozen strategies and recommendations that change nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.analysis.board import SettingsBoard
from services.analysis.config import AnalysisSettings
from services.analysis.patterns import Bucket, pattern_book
from services.analysis.performance import Figures, Performance, figures, performance
from services.analysis.policy import judged_trades, recommend
from services.analysis.ranges import RangeCandle, RangeMetrics, RangeTracker, Regime
from services.analysis.repository import AnalysisRepository
from services.analysis.signals import SignalQuery, SignalRecord
from services.analysis.trades import FillRecord, Trade, TradeBook
from services.common.clock import Clock
from services.common.strategy_settings import Allocation

log = logging.getLogger(__name__)

#: The most entries the pattern book reads (the latest ones).
PATTERN_ENTRIES = 50_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    strategy: str
    recommended: Allocation | None  # None: too few trades to judge
    regime: Regime
    basis: Figures
    computed_time: datetime


class AnalysisEngine:
    def __init__(self, repository: AnalysisRepository, board: SettingsBoard, settings: AnalysisSettings,
                 clock: Clock) -> None:
        self._repository = repository
        self.board = board
        self.settings = settings
        self._clock = clock
        self.trades = TradeBook()
        self.ranges: dict[str, RangeTracker] = {}
        self.recommendations: dict[str, Recommendation] = {}
        self._instrument_of: dict[str, str] = {}  # each strategy's latest instrument: its regime counts
        self.data_time: datetime | None = None  # the latest candle or fill: the policy's clock
        self._wake = asyncio.Event()

    @classmethod
    async def open(cls, repository: AnalysisRepository, board: SettingsBoard, settings: AnalysisSettings,
                   clock: Clock) -> "AnalysisEngine":
        engine = cls(repository, board, settings, clock)
        engine._book(await repository.fills())
        return engine

    @property
    def last_fill_seq(self) -> int:
        return self.trades.last_fill_seq

    # ---- what comes in ----------------------------------------------------------------------

    async def record_signals(self, signals: Sequence[SignalRecord]) -> int:
        return await self._repository.record_signals(signals)

    async def apply_fills(self, fills: Sequence[FillRecord]) -> None:
        new = [f for f in fills if f.seq > self.trades.last_fill_seq]
        if not new:
            return
        await self._repository.record_fills(new)
        self._book(new)
        self._wake.set()

    def _book(self, fills: Sequence[FillRecord]) -> None:
        for fill in fills:
            self.trades.apply(fill)
            self._instrument_of[fill.strategy] = fill.instrument
            self._saw(fill.time)

    def _saw(self, moment: datetime) -> None:
        if self.data_time is None or moment > self.data_time:
            self.data_time = moment

    async def apply_candles(self, candles: Sequence[RangeCandle]) -> None:
        states = []
        for candle in candles:
            tracker = self.ranges.get(candle.instrument)
            if tracker is None:
                self.ranges[candle.instrument] = tracker = RangeTracker(candle.instrument, self.settings.ranges)
            state = tracker.add(candle)
            if state is not None:
                states.append(state)
                self._saw(state.as_of)
        if states:
            await self._repository.record_states(states)
            self._wake.set()

    # ---- what goes out ----------------------------------------------------------------------

    async def signals(self, query: SignalQuery) -> list[SignalRecord]:
        return await self._repository.signals(query)

    def performance(self, strategy: str = "", instrument: str = "") -> list[Performance]:
        keys = sorted(k for k in self.trades.keys()
                      if (not strategy or k[0] == strategy) and (not instrument or k[1] == instrument))
        return [performance(s, i, [t for t in self.trades.closed if t.strategy == s and t.instrument == i],
                            rolling_trades=self.settings.rolling_trades) for s, i in keys]

    def range_metrics(self, instrument: str = "") -> list[RangeMetrics]:
        return [self.ranges[i].metrics() for i in sorted(self.ranges) if not instrument or i == instrument]

    async def pattern_book(self, strategy: str = "", instrument: str = "") -> list[Bucket]:
        entries = await self._repository.entries(strategy, instrument, PATTERN_ENTRIES)
        return pattern_book(entries, self.trades.closed, self.settings.pattern_bins)

    def regime_of(self, strategy: str) -> Regime:
        tracker = self.ranges.get(self._instrument_of.get(strategy, ""))
        return tracker.state.regime if tracker is not None and tracker.state is not None else Regime.UNKNOWN

    def strategy_trades(self, strategy: str) -> list[Trade]:
        return [t for t in self.trades.closed if t.strategy == strategy]

    # ---- the policy -------------------------------------------------------------------------

    def recommend_all(self) -> dict[str, Recommendation]:
        out = {}
        if self.data_time is None:
            return out
        for strategy in sorted({s for s, _ in self.trades.keys()}):
            current = self.board.get(strategy).allocation
            judged = figures(judged_trades(self.strategy_trades(strategy), current, self.settings.rolling_trades))
            regime = self.regime_of(strategy)
            out[strategy] = Recommendation(
                strategy=strategy, regime=regime, basis=judged, computed_time=self._clock.now(),
                recommended=recommend(judged, regime, self.settings.limits, current=current, now=self.data_time))
        return out

    async def run_policy(self) -> None:
        """Recomputes on every wake; with policy "apply", hands each recommendation to the board."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.evaluate_policy()
            except Exception:  # noqa: BLE001 - a failed round (the database away) must not end the policy
                log.exception("the allocation policy could not apply its recommendations; retrying")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def evaluate_policy(self) -> None:
        self.recommendations = self.recommend_all()
        if self.settings.policy == "apply":
            for strategy, recommendation in self.recommendations.items():
                if recommendation.recommended is None:
                    continue
                before = self.board.get(strategy)
                after = await self.board.apply_allocation(strategy, recommendation.recommended)
                if after.version != before.version:
                    log.info("allocation changed", extra={"strategy": strategy, "version": after.version,
                                                          "allocation": after.allocation.describe(),
                                                          "reason": after.allocation.reason})


__all__ = ["AnalysisEngine", "PATTERN_ENTRIES", "Recommendation"]
