"""Retries with the same client id and a rate limiter that backs off on overload."""

import asyncio

from decimal import Decimal

import pytest

from services.common.clock import SimulatedClock
from services.order.brokers.base import (BrokerOrder, BrokerOverloaded, BrokerRejected, OutcomeUnknown,
                                         RetryableBrokerError)
from services.order.brokers.gateway import AdaptiveRateLimiter, BrokerGateway
from services.order.brokers.paper import MemoryVenueStore, PaperBroker
from tests.unit.order.conftest import START


class Flaky:
    """A paper venue that fails the first calls the way a real one does."""

    name = "flaky"

    def __init__(self, failures):
        self.failures = list(failures)
        self.venue = MemoryVenueStore()
        self.paper = PaperBroker(self.venue)
        self.calls = []

    async def submit(self, order):
        self.calls.append(order.client_order_id)
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "after-send":  # the venue took it, then the answer was lost
                await self.paper.submit(order)
                raise RetryableBrokerError("502 bad gateway")
            raise failure
        return await self.paper.submit(order)


class InstantClock(SimulatedClock):
    """Sleeping moves simulated time at once, so retries do not wait in a unit test."""

    def __init__(self):
        super().__init__(START)
        self.slept = []

    async def sleep(self, seconds):
        self.slept.append(seconds)
        self.advance(seconds)


ORDER = BrokerOrder(client_order_id="g-1", account="paper", instrument="USD_JPY", side="buy",
                    quantity=Decimal(1), order_type="market")


async def test_retryable_errors_are_retried_with_the_same_client_id_and_never_duplicate():
    broker = Flaky(["after-send", RetryableBrokerError("connection refused"), "after-send"])
    gateway = BrokerGateway(broker, InstantClock(), attempts=5)
    ack = await gateway.submit(ORDER)
    assert ack.broker_order_id == "paper-1" and broker.calls == ["g-1"] * 4
    assert len(await broker.venue.all_orders()) == 1 and gateway.retries == 3


async def test_a_rejection_is_final_and_attempts_are_bounded():
    broker = Flaky([BrokerRejected("insufficient margin")])
    with pytest.raises(BrokerRejected):
        await BrokerGateway(broker, InstantClock()).submit(ORDER)
    assert broker.calls == ["g-1"]
    broker = Flaky([RetryableBrokerError("down")] * 10)
    with pytest.raises(RetryableBrokerError):
        await BrokerGateway(broker, InstantClock(), attempts=3).submit(ORDER)
    assert len(broker.calls) == 3


async def test_overload_halves_the_rate_waits_retry_after_and_recovers_gradually():
    clock = InstantClock()
    broker = Flaky([BrokerOverloaded("429", retry_after=2.0)])
    gateway = BrokerGateway(broker, clock, rate_per_second=10)
    await gateway.submit(ORDER)
    assert 2.0 in clock.slept
    assert gateway.limiter.rate == pytest.approx(6.0)  # halved to 5, then +10% of 10 for the success
    for _ in range(10):
        gateway.limiter.recover()
    assert gateway.limiter.rate == 10


async def test_the_token_bucket_spaces_calls_at_its_rate():
    clock = InstantClock()
    limiter = AdaptiveRateLimiter(2, clock)
    for _ in range(6):
        await limiter.acquire()
    assert (clock.now() - START).total_seconds() == pytest.approx(2.0)


class Doubtful:
    """A venue that takes the order and then loses the answer: the outcome is unknown."""

    name = "doubtful"

    def __init__(self):
        self.venue = MemoryVenueStore()
        self.paper = PaperBroker(self.venue)
        self.submits = 0
        self.lookups = 0

    async def submit(self, order):
        self.submits += 1
        await self.paper.submit(order)
        raise OutcomeUnknown("read timed out after the venue took the order")

    async def lookup(self, client_order_id):
        self.lookups += 1
        if self.lookups == 1:
            raise OutcomeUnknown("lookup timed out")
        return await self.paper.lookup(client_order_id)


async def test_an_unknown_outcome_is_never_sent_again_but_a_lookup_is_retried():
    broker = Doubtful()
    gateway = BrokerGateway(broker, InstantClock(), attempts=5)
    with pytest.raises(OutcomeUnknown):
        await gateway.submit(ORDER)
    assert broker.submits == 1 and len(await broker.venue.all_orders()) == 1 and gateway.retries == 0
    found = await gateway.lookup("g-1")
    assert found is not None and broker.lookups == 2


async def test_exits_take_the_priority_lane_and_entries_cannot_starve_them():
    clock = SimulatedClock(START)  # sleepers wake in deadline order as time is moved
    limiter = AdaptiveRateLimiter(4, clock)  # 4/s, one token kept back for exits
    for _ in range(4):
        await limiter.acquire()  # a burst of entries spends what entries may take
    await limiter.acquire(priority=True)  # the exit still gets the reserve, at once
    assert clock.now() == START
    served = []

    async def take(name, priority):
        await limiter.acquire(priority=priority)
        served.append(name)
    waiting = [asyncio.ensure_future(take("entry", False)), asyncio.ensure_future(take("exit", True))]
    while not all(task.done() for task in waiting):
        await asyncio.sleep(0)  # a turn of the loop for the woken sleeper, no wall time
        clock.advance(0.05)
    assert served == ["exit", "entry"]
