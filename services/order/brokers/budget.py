"""Rate budgets: token buckets with a priority lane, so exits and cancels are never starved by entries.

A venue limits requests per second (GMO Coin Tier 1: 20 GET/s and 20 POST/s,
https://api.coin.z.com/docs/#restrictions; OANDA: 120 requests/s per account,
https://developer.oanda.com/rest-live-v20/best-practices/). An entry may take a token
only while `reserve` tokens stay in the bucket; an exit or a cancel may take the last
one. So a burst of entries leaves room for the exit that must get out, and when both
wait, the exit is served first (it needs 1 token, an entry needs 1 + reserve).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.clock import Clock


class AdaptiveRateLimiter:
    """A token bucket with a priority lane that halves its rate when the venue says "slow down".

    Recovery is +10% of the base rate per successful call, so one 429 costs a few dozen
    calls at a lower pace instead of a burst that triggers the next 429.
    """

    def __init__(self, rate_per_second: float, clock: Clock, *, minimum_rate: float = 0.5,
                 reserve_fraction: float = 0.25) -> None:
        self.base_rate = rate_per_second
        self.rate = rate_per_second
        self._minimum = min(minimum_rate, rate_per_second)
        self._clock = clock
        self._reserve = max(1.0, rate_per_second) * reserve_fraction
        self._tokens = self.capacity
        self._at: float | None = None

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate) + self._reserve

    async def acquire(self, *, priority: bool = False) -> None:
        need = 1.0 if priority else 1.0 + self._reserve
        while True:
            now = self._clock.now().timestamp()
            if self._at is not None:
                self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= need:
                self._tokens -= 1.0
                return
            await self._clock.sleep((need - self._tokens) / self.rate)

    def slow_down(self) -> None:
        self.rate = max(self._minimum, self.rate / 2)
        self._tokens = min(self._tokens, 1.0)

    def recover(self) -> None:
        self.rate = min(self.base_rate, self.rate + self.base_rate * 0.1)


@dataclass(frozen=True, slots=True)
class VenueBudget:
    """One venue's request budgets: reads (GET) and writes (orders, cancels); may be one shared bucket."""

    reads: AdaptiveRateLimiter
    writes: AdaptiveRateLimiter

    @classmethod
    def split(cls, reads_per_second: float, writes_per_second: float, clock: Clock) -> "VenueBudget":
        return cls(AdaptiveRateLimiter(reads_per_second, clock), AdaptiveRateLimiter(writes_per_second, clock))

    @classmethod
    def shared(cls, per_second: float, clock: Clock) -> "VenueBudget":
        bucket = AdaptiveRateLimiter(per_second, clock)
        return cls(bucket, bucket)

    async def read(self, *, priority: bool = False) -> None:
        await self.reads.acquire(priority=priority)

    async def write(self, *, priority: bool = False) -> None:
        await self.writes.acquire(priority=priority)
