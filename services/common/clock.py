"""Time as a dependency: the wall clock live, a simulated clock in backtests."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of this clock's time."""


class WallClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimulatedClock:
    """Moves only when the data moves it, so a backtest runs as fast as the data allows.

    Sleepers wake when `advance_to` passes their deadline, in deadline order.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start time")
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._now.timestamp()

    def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            return  # time never goes backwards; a late event keeps the current time
        self._now = moment
        if not self._sleepers:
            return  # the usual case in a backtest: every tick moves the clock, few ever sleep on it
        due = [s for s in self._sleepers if s[0] <= moment]
        self._sleepers = [s for s in self._sleepers if s[0] > moment]
        for _, future in sorted(due, key=lambda s: s[0]):
            if not future.done():
                future.set_result(None)

    def advance(self, seconds: float) -> None:
        self.advance_to(self._now + timedelta(seconds=seconds))

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + timedelta(seconds=seconds), future))
        await future
