"""What every venue test drives the adapters through: the gateway, and the 429-storm scenario."""

from __future__ import annotations

from services.common.clock import WallClock
from services.order.brokers.base import BrokerOrder
from services.order.brokers.gateway import BrokerGateway


def gateway(broker, attempts: int = 5) -> BrokerGateway:
    return BrokerGateway(broker, WallClock(), rate_per_second=50.0, attempts=attempts, initial_backoff=0.01,
                         max_backoff=0.05)


async def rides_out_a_429_storm(broker, fake, order: BrokerOrder, *, throttled: int = 3) -> None:
    """`throttled` 429s in a row: the gateway slows down, retries, and the order fills once."""
    fake.throttle = throttled
    road = gateway(broker, attempts=throttled + 3)
    ack = await road.submit(order)
    assert ack.state == "filled" and len(fake.orders) == 1 and road.retries == throttled
    assert road.limiter.rate < road.limiter.base_rate  # slowed down, earning the rate back
