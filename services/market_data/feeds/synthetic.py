"""A seeded synthetic market, realistic enough to trade on, and the default feed.

Per instrument:
- the mid follows a random walk whose per-second variance is GARCH(1,1)-like
  (v <- v0 (1 - a - b) + a r^2/dt + b v), so calm and busy stretches cluster;
- ticks arrive at random intervals (0.2 s to 1 s);
- the spread, in whole ticks and never below `min_spread_ticks`, widens with volatility;
- FX (not crypto) is closed from Friday 22:00 UTC to Sunday 22:00 UTC: no ticks, and
  the first tick after the reopen gaps away from Friday's close;
- an aggressor side and a volume come with each tick (the side follows the mid's move).

The same seed and start time give the same ticks, tick for tick.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from services.market_data.feeds.base import FeedTick


@dataclass(frozen=True, slots=True)
class SyntheticMarket:
    """Parameters of one synthetic instrument."""

    symbol: str
    start_price: Decimal
    tick_size: Decimal
    daily_vol: float          # relative, e.g. 0.006 = 0.6 % a day
    base_spread_ticks: int
    min_spread_ticks: int
    weekend_closed: bool
    volume_unit: int


MARKETS: dict[str, SyntheticMarket] = {
    "USD_JPY": SyntheticMarket("USD_JPY", Decimal("150.000"), Decimal("0.001"), 0.006, 4, 2, True, 1_000),
    "EUR_USD": SyntheticMarket("EUR_USD", Decimal("1.08000"), Decimal("0.00001"), 0.005, 6, 3, True, 1_000),
    "BTC_JPY": SyntheticMarket("BTC_JPY", Decimal("15000000"), Decimal("1"), 0.03, 1_500, 100, False, 1),
}

_GARCH_A, _GARCH_B = 0.05, 0.94
_WEEKEND_GAP_SIGMA = 0.002  # relative sd of the price gap over a closed weekend
_SECONDS_PER_DAY = 86_400.0


def weekend_closed_at(moment: datetime) -> bool:
    """True from Friday 22:00 UTC (inclusive) to Sunday 22:00 UTC (exclusive)."""
    weekday, hour = moment.weekday(), moment.hour
    return (weekday == 4 and hour >= 22) or weekday == 5 or (weekday == 6 and hour < 22)


def next_reopen(moment: datetime) -> datetime:
    """Sunday 22:00 UTC following `moment` (which is inside a weekend closure)."""
    days_to_sunday = (6 - moment.weekday()) % 7
    sunday = (moment + timedelta(days=days_to_sunday)).replace(hour=22, minute=0, second=0, microsecond=0)
    return sunday if sunday > moment else sunday + timedelta(days=7)


class _Walk:
    """One instrument's path; all randomness from its own seeded generator."""

    def __init__(self, market: SyntheticMarket, seed: int, start: datetime) -> None:
        self.market = market
        self.rng = random.Random(f"{seed}:{market.symbol}")
        self.mid_ticks = float(market.start_price / market.tick_size)
        self.v0 = (market.daily_vol ** 2) / _SECONDS_PER_DAY
        self.variance = self.v0
        self.time = start

    def next_tick(self) -> FeedTick:
        m, rng = self.market, self.rng
        dt = rng.uniform(0.2, 1.0)
        moment = self.time + timedelta(microseconds=round(dt * 1e6))
        gap = 0.0
        if m.weekend_closed and weekend_closed_at(moment):
            moment = next_reopen(moment) + timedelta(microseconds=round(rng.uniform(0.05, 2.0) * 1e6))
            gap = rng.gauss(0.0, _WEEKEND_GAP_SIGMA)
        self.time = moment
        sigma = math.sqrt(self.variance * dt)
        ret = sigma * rng.gauss(0.0, 1.0) + gap
        self.variance = self.v0 * (1 - _GARCH_A - _GARCH_B) + _GARCH_A * (ret * ret) / dt + _GARCH_B * self.variance
        previous = self.mid_ticks
        self.mid_ticks *= math.exp(ret)
        vol_ratio = math.sqrt(self.variance / self.v0)
        spread = max(m.min_spread_ticks, round(m.base_spread_ticks * vol_ratio * rng.uniform(0.8, 1.2)))
        bid_ticks = math.floor(self.mid_ticks - spread / 2)
        side = "buy" if self.mid_ticks >= previous else "sell"
        volume = m.volume_unit * max(1, round(rng.lognormvariate(2.0, 0.8)))
        return FeedTick(m.symbol, moment, Decimal(bid_ticks) * m.tick_size,
                        Decimal(bid_ticks + spread) * m.tick_size, Decimal(volume), side)


class SyntheticFeed:
    """Endless ticks of the given instruments, merged in time order."""

    def __init__(self, instruments: tuple[str, ...] = ("USD_JPY",), *, seed: int = 7,
                 start: datetime | None = None) -> None:
        unknown = [s for s in instruments if s not in MARKETS]
        if unknown:
            raise ValueError(f"the synthetic feed has no model for {', '.join(unknown)}; "
                             f"it knows {', '.join(MARKETS)}")
        if start is not None and start.tzinfo is None:
            raise ValueError("the synthetic feed needs a timezone-aware start time")
        self.name = "synthetic"
        self.instruments = tuple(instruments)
        self.seed = seed
        self.start = start or datetime.now(timezone.utc)

    def generate(self) -> Iterator[FeedTick]:
        walks = [_Walk(MARKETS[s], self.seed, self.start) for s in self.instruments]
        heap = [(w.next_tick(), i) for i, w in enumerate(walks)]
        heap = [(t.time, i, t) for t, i in heap]
        heapq.heapify(heap)
        while True:
            _, i, tick = heapq.heappop(heap)
            yield tick
            following = walks[i].next_tick()
            heapq.heappush(heap, (following.time, i, following))

    async def ticks(self) -> AsyncIterator[FeedTick]:
        for tick in self.generate():
            yield tick
