"""Builders for the order engine with in-memory ports (no I/O, simulated clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.common.clock import SimulatedClock
from services.order.brokers.paper import MemoryVenueStore, PaperBroker, PaperSettings
from services.order.engine import OrderEngine, build_engine
from services.order.intents import Intent
from services.order.journal import JournalSettings
from services.order.repository import MemoryOrderStore
from services.order.risk import Exposure, RiskLimits

START = datetime(2013, 1, 1, 22, 0, tzinfo=timezone.utc)


@dataclass
class Verdict:
    allowed: bool
    rule: str = ""
    reason: str = ""


class FlagsStub:
    """The documented flag semantics, driven by a plain attribute: active, reducing or halted."""

    def __init__(self) -> None:
        self.state = "active"
        self.calls: list[tuple[str, str, bool]] = []

    def verdict(self, slug, role, reduces_position):
        self.calls.append((slug, role, reduces_position))
        if self.state == "halted":
            return Verdict(False, "guard.halted", "global_lock is set: no new orders")
        if self.state == "reducing" and not reduces_position:
            return Verdict(False, "guard.reducing", "global entries are disabled: only reducing orders pass")
        return Verdict(True)


class PositionsStub:
    """An ExposureSource driven by plain attributes; `down` makes it stale, like a silent position plane."""

    def __init__(self) -> None:
        self.strategy = Decimal(0)
        self.instrument = Decimal(0)
        self.drawdown = Decimal(0)
        self.losses = 0
        self.down = False
        self.asked_with: list[int | None] = []

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        self.asked_with.append(recorded_fill_seq)
        return Exposure(strategy_position=self.strategy, instrument_position=self.instrument,
                        drawdown_fraction=self.drawdown, consecutive_losses=self.losses,
                        stale_reason="the position plane at 127.0.0.1:9 has been silent for 9.0 s" if self.down
                        else "")


def intent(cid: str = "c-1", **overrides) -> Intent:
    fields = dict(client_order_id=cid, strategy_slug="ma_cross", role="entry", instrument="USD_JPY", side="buy",
                  quantity=Decimal(1000), order_type="market", time_in_force="IOC", account="paper")
    fields.update(overrides)
    return Intent(**fields)


@dataclass
class Rig:
    engine: OrderEngine
    store: MemoryOrderStore
    venue: MemoryVenueStore
    paper: PaperBroker
    flags: FlagsStub
    positions: PositionsStub
    clock: SimulatedClock

    async def quote(self, bid: str, ask: str, seconds: float = 1.0, instrument: str = "USD_JPY"):
        self.clock.advance(seconds)
        await self.paper.on_quote(instrument, self.clock.now(), Decimal(bid), Decimal(ask))
        await settle()


async def settle():
    import asyncio

    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
async def make_rig():
    made: list[Rig] = []

    async def build(limits: RiskLimits | None = None, settings: PaperSettings | None = None,
                    broker=None, store: MemoryOrderStore | None = None, venue: MemoryVenueStore | None = None,
                    recover: bool = True, wrap_broker=None, **engine_kw) -> Rig:
        clock = SimulatedClock(START)
        venue = venue or MemoryVenueStore()
        paper = PaperBroker(venue, settings or PaperSettings())
        store = store or MemoryOrderStore()
        flags, positions = FlagsStub(), PositionsStub()
        engine_kw.setdefault("journal", JournalSettings(group_commit=False))
        broker = broker or paper
        if wrap_broker is not None:
            broker = wrap_broker(broker)
        engine = build_engine(store=store, broker=broker, flags=flags, exposure=positions,
                              limits=limits or RiskLimits(), clock=clock, **engine_kw)
        await engine.start(recover=recover)
        rig = Rig(engine, store, venue, paper, flags, positions, clock)
        made.append(rig)
        return rig

    yield build
    for rig in made:
        await rig.engine.stop()
