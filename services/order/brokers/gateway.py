"""The road to a venue: a rate limiter that backs off on overload, and bounded retries.

Every retry sends the very same BrokerOrder (same client_order_id), and venues are
idempotent on it, so a retry can never create a second order. Only errors the venue
marks as safe to repeat are retried; a rejection is final at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.common.clock import Clock
from services.order.brokers.base import (Broker, BrokerAck, BrokerExecution, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, RetryableBrokerError)

T = TypeVar("T")


class AdaptiveRateLimiter:
    """A token bucket that halves its rate when the venue says "slow down" and earns it back slowly.

    Recovery is +10% of the base rate per successful call, so one 429 costs a few
    dozen calls at a lower pace instead of a burst that triggers the next 429.
    """

    def __init__(self, rate_per_second: float, clock: Clock, *, minimum_rate: float = 0.5) -> None:
        self.base_rate = rate_per_second
        self.rate = rate_per_second
        self._minimum = min(minimum_rate, rate_per_second)
        self._clock = clock
        self._tokens = max(1.0, rate_per_second)
        self._at: float | None = None

    async def acquire(self) -> None:
        while True:
            now = self._clock.now().timestamp()
            if self._at is not None:
                self._tokens = min(max(1.0, self.rate), self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await self._clock.sleep((1.0 - self._tokens) / self.rate)

    def slow_down(self) -> None:
        self.rate = max(self._minimum, self.rate / 2)
        self._tokens = min(self._tokens, 1.0)

    def recover(self) -> None:
        self.rate = min(self.base_rate, self.rate + self.base_rate * 0.1)


class BrokerGateway:
    """Wraps a Broker with rate limiting and retries; itself a Broker."""

    def __init__(self, broker: Broker, clock: Clock, *, rate_per_second: float = 100.0, attempts: int = 5,
                 initial_backoff: float = 0.1, max_backoff: float = 5.0) -> None:
        self.inner = broker
        self.name = broker.name
        self.limiter = AdaptiveRateLimiter(rate_per_second, clock)
        self._clock = clock
        self._attempts = attempts
        self._backoff = wait_exponential(multiplier=initial_backoff, max=max_backoff)
        self.retries = 0

    async def _call(self, action: Callable[[], Awaitable[T]]) -> T:
        def wait(state) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, BrokerOverloaded):
                return max(error.retry_after, self._backoff(state))
            return self._backoff(state)

        def before_sleep(state) -> None:
            self.retries += 1

        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((RetryableBrokerError, BrokerOverloaded)),
            stop=stop_after_attempt(self._attempts), wait=wait, sleep=self._clock.sleep,
            before_sleep=before_sleep, reraise=True,
        ):
            with attempt:
                await self.limiter.acquire()
                try:
                    result = await action()
                except BrokerOverloaded:
                    self.limiter.slow_down()
                    raise
                self.limiter.recover()
                return result
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        return await self._call(lambda: self.inner.submit(order))

    async def cancel(self, client_order_id: str) -> BrokerAck:
        return await self._call(lambda: self.inner.cancel(client_order_id))

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        return await self._call(lambda: self.inner.lookup(client_order_id))

    async def positions(self, account: str) -> list[BrokerPositionView]:
        return await self._call(lambda: self.inner.positions(account))

    def executions(self) -> AsyncIterator[BrokerExecution]:
        return self.inner.executions()
