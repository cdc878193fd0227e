"""The road to a venue: a rate limiter that backs off on overload, and bounded retries.

`submit` is retried ONLY when the venue definitely did not take the order
(`RetryableBrokerError`: e.g. connection refused before sending) or asked us to slow
down (`BrokerOverloaded`, HTTP 429). An order whose outcome is unknown
(`OutcomeUnknown`: a timeout, a cut connection, a 5xx after sending, Binance -1006) is
never sent again: OANDA refuses a reused client id only while the first order is still
pending, Binance only while it is open, and GMO has no client id at all, so a resend
after a fill is a second fill. The error goes straight back to the engine, which looks
the order up. Reads (lookup, positions) and cancels are safe to repeat, so they are
retried on OutcomeUnknown too. A rejection is final at once.

Exits and cancels take the limiter's priority lane, so entries cannot starve them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar


from services.common.clock import Clock
from services.order.brokers.base import (Broker, BrokerAck, BrokerExecution, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, OutcomeUnknown, RetryableBrokerError,
                                         copy_traits)
from services.order.brokers.budget import AdaptiveRateLimiter

T = TypeVar("T")

#: What may be repeated, per kind of call.
SEND_RETRIES = (RetryableBrokerError, BrokerOverloaded)
READ_RETRIES = (RetryableBrokerError, BrokerOverloaded, OutcomeUnknown)

__all__ = ["AdaptiveRateLimiter", "BrokerGateway", "SEND_RETRIES", "READ_RETRIES"]


class BrokerGateway:
    """Wraps a Broker with rate limiting and retries; itself a Broker."""

    def __init__(self, broker: Broker, clock: Clock, *, rate_per_second: float = 100.0, attempts: int = 5,
                 initial_backoff: float = 0.1, max_backoff: float = 5.0) -> None:
        self.inner = broker
        self.name = broker.name
        copy_traits(self, broker)
        self.limiter = AdaptiveRateLimiter(rate_per_second, clock)
        self._clock = clock
        self._attempts = attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self.retries = 0

    async def _call(self, action: Callable[[], Awaitable[T]], retry_on: tuple[type[BaseException], ...], *,
                    priority: bool = False) -> T:
        """One call, retried on `retry_on` with exponential backoff (a 429's retry_after when longer).

        A plain loop, not tenacity: every order passes here, and the first attempt is the one
        that nearly always answers, so it must cost no more than the call itself."""
        attempt = 1
        while True:
            await self.limiter.acquire(priority=priority)
            try:
                result = await action()
            except retry_on as error:
                if isinstance(error, BrokerOverloaded):
                    self.limiter.slow_down()
                if attempt >= self._attempts:
                    raise
                wait = min(self._max_backoff, self._initial_backoff * 2 ** (attempt - 1))
                if isinstance(error, BrokerOverloaded):
                    wait = max(error.retry_after, wait)
                self.retries += 1
                attempt += 1
                await self._clock.sleep(wait)
                continue
            self.limiter.recover()
            return result

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        return await self._call(lambda: self.inner.submit(order), SEND_RETRIES, priority=order.is_exit)

    async def cancel(self, client_order_id: str) -> BrokerAck:
        return await self._call(lambda: self.inner.cancel(client_order_id), READ_RETRIES, priority=True)

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        return await self._call(lambda: self.inner.lookup(client_order_id), READ_RETRIES)

    async def positions(self, account: str) -> list[BrokerPositionView]:
        return await self._call(lambda: self.inner.positions(account), READ_RETRIES)

    def executions(self) -> AsyncIterator[BrokerExecution]:
        return self.inner.executions()
