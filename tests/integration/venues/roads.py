"""What every venue test drives the adapters through: the gateway, the 429-storm scenario, and an order
plane in memory over an adapter."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.common.clock import WallClock
from services.common.vocabulary import OrderType, Side, StrategyRole, TimeInForce
from services.order.brokers.base import BrokerExecution, BrokerOrder
from services.order.brokers.gateway import BrokerGateway
from services.order.engine import OrderEngine, build_engine
from services.order.intents import Intent
from services.order.journal import JournalSettings
from services.order.records import OrderRecord
from services.order.repository import MemoryOrderStore
from services.order.risk import RiskLimits


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


class MovedClock(WallClock):
    """The wall clock, moved on by the test (`ahead`): a lag that lasts minutes, in no time."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.ahead


class LetsEverythingThrough:
    """The control flags with nothing set: every order passes the guard."""

    @dataclass(frozen=True)
    class Verdict:
        allowed: bool = True
        rule: str = ""
        reason: str = ""

    def verdict(self, slug: str, role: str, reduces_position: bool) -> "LetsEverythingThrough.Verdict":
        return self.Verdict()


@dataclass
class OrderPlane:
    engine: OrderEngine
    store: MemoryOrderStore

    async def order(self, client_order_id: str) -> OrderRecord:
        """The order as the plane records it."""
        order = await self.engine.venue.current(client_order_id)
        assert order is not None
        return order

    async def fill_ids(self, client_order_id: str) -> list[str]:
        """The venue's ids of the fills the plane booked for the order."""
        order = await self.order(client_order_id)
        return [f.broker_fill_id for f in await self.store.fills_of(order.number)]

    async def follow(self, broker) -> list[BrokerExecution]:
        """One poll of the broker's resting orders, applied as the plane's executions task would."""
        news = await broker.poll()
        for execution in news:
            await self.engine.venue.apply_execution(execution)
        return news


@asynccontextmanager
async def order_plane(broker):
    """The order plane over `broker`, in memory; the test feeds it the broker's polls (`OrderPlane.follow`)."""
    store = MemoryOrderStore()
    engine = build_engine(store=store, broker=broker, flags=LetsEverythingThrough(), exposure=None,
                          limits=RiskLimits(), clock=WallClock(), journal=JournalSettings(group_commit=False))
    await engine.start(recover=False, follow_executions=False)
    try:
        yield OrderPlane(engine, store)
    finally:
        await engine.stop()


def limit_intent(cid: str, instrument: str, quantity: str, price: str) -> Intent:
    return Intent(client_order_id=cid, strategy_slug="trend", role=StrategyRole.ENTRY, instrument=instrument,
                  side=Side.BUY, quantity=Decimal(quantity), order_type=OrderType.LIMIT, limit_price=Decimal(price),
                  time_in_force=TimeInForce.GTC, account="acct")
