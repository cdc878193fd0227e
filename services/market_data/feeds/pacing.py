"""Replay speed: real time, N times faster, or as fast as possible under a simulated clock.

`Pacing` drives a feed into a sink (the engine): it waits until each tick's time has come
on a `FeedClock` (feed time running at `speed` times wall time from the first tick), and
while it waits it tells the sink how far feed time has got (`on_time`), so candles close
on time through quiet spells and weekends. Every later tick is at or after the next tick's
time, so a bucket closed by `on_time` can never receive another tick. At `max` speed a
`SimulatedClock` is advanced to each tick's time and nothing waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from services.common.clock import SimulatedClock
from services.market_data.feeds.base import Feed, FeedTick

_HEARTBEAT_SECONDS = 0.5  # wall seconds between on_time calls while waiting for a tick
_YIELD_EVERY = 256        # ticks between yields to the event loop at max speed


@dataclass(frozen=True, slots=True)
class Speed:
    """`factor` times real time; None means as fast as possible."""

    factor: float | None

    @classmethod
    def parse(cls, text: str) -> "Speed":
        value = text.strip().lower()
        if value == "max":
            return cls(None)
        if value == "realtime":
            return cls(1.0)
        if value.endswith("x"):
            try:
                factor = float(value[:-1])
            except ValueError:
                factor = float("nan")
            if factor > 0 and factor != float("inf"):
                return cls(factor)
        raise ValueError(f"{text!r} is not a replay speed (use max, realtime or Nx such as 10x)")

    def __str__(self) -> str:
        return "max" if self.factor is None else ("realtime" if self.factor == 1.0 else f"{self.factor:g}x")


class FeedClock:
    """Feed time that runs at `speed` times the wall clock from an anchor."""

    def __init__(self, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.speed = speed
        self._monotonic = monotonic
        self._anchor: tuple[datetime, float] | None = None

    def anchor(self, feed_time: datetime) -> None:
        self._anchor = (feed_time, self._monotonic())

    def now(self) -> datetime:
        if self._anchor is None:
            return datetime.now(timezone.utc)
        feed_time, wall = self._anchor
        return feed_time + timedelta(seconds=(self._monotonic() - wall) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds / self.speed))


#: A gap in feed time at least this long is a market closure (a weekend, a holiday).
CLOSURE = timedelta(hours=1)


class Pacing:
    """`skip_closures`: a paced feed does not wait out a market closure in wall time; candles
    still close at the closure (on_time runs up to the next tick) and the data keeps its gap,
    only nobody has to sit through a weekend at 60x. Off by default: live-like pacing waits."""

    def __init__(self, speed: Speed, *, skip_closures: bool = False) -> None:
        self.speed = speed
        self.skip_closures = skip_closures
        self.clock: FeedClock | SimulatedClock | None = None

    async def run(self, feed: Feed, on_tick: Callable[[FeedTick], None],
                  on_time: Callable[[datetime], None]) -> None:
        """Feeds every tick to `on_tick`, paced; returns when the feed ends."""
        factor = self.speed.factor
        count = 0
        async for tick in feed.ticks():
            if factor is None:
                if self.clock is None:
                    self.clock = SimulatedClock(tick.time)
                self.clock.advance_to(tick.time)
                on_tick(tick)
                count += 1
                if count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                continue
            if self.clock is None:
                self.clock = FeedClock(factor)
                # A feed that knows when its timeline starts (the synthetic one: now) is anchored
                # there, so a first tick after a closed weekend waits for the reopen; a recording
                # is anchored at its first tick.
                start = getattr(feed, "start", None)
                self.clock.anchor(start if isinstance(start, datetime) and start <= tick.time else tick.time)
            if self.skip_closures and tick.time - self.clock.now() >= CLOSURE:
                on_time(tick.time)
                self.clock.anchor(tick.time)
            while (ahead := (tick.time - self.clock.now()).total_seconds()) > 0:
                await asyncio.sleep(min(ahead / factor, _HEARTBEAT_SECONDS))
                on_time(min(self.clock.now(), tick.time))
            on_tick(tick)

    async def keep_time(self, on_time: Callable[[datetime], None]) -> None:
        """After the feed ended: keeps closing candles as paced feed time passes (not at max speed)."""
        if not isinstance(self.clock, FeedClock):
            return
        while True:
            await asyncio.sleep(_HEARTBEAT_SECONDS)
            on_time(self.clock.now())
