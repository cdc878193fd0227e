"""`python -m services.order`: the order plane as a process.

Wiring: PostgreSQL (schema `orders`, and `paper_venue` for the paper venue's own
book), the paper broker fed by MarketData.StreamTicks, behind the retrying gateway;
the control flags through FlagsFollower; exposure from the position plane's
WatchExposure stream (or the own book with QUANTMESH_POSITIONS_SOURCE=own_book);
QUANTMESH_FAULT wraps the venue in a crash switch for the fault tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys

from quantmesh.order.v1 import order_pb2, order_pb2_grpc
from services.common.audit import AuditOutbox
from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.db import connect_pool
from services.common.flags import FlagsFollower
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import Database, host_for
from services.common.server import binding, serve
from services.common.telemetry import setup_tracing
from services.order.brokers.factory import real_venue
from services.order.brokers.gateway import BrokerGateway
from services.order.brokers.paper import PaperBroker
from services.order.brokers.venue_store import PostgresVenueStore
from services.order.config import OrderConfig
from services.common.exposure import ExposureFollower
from services.order.engine import build_engine
from services.order.exposure import StreamedExposure
from services.order.faults import with_fault
from services.order.kill_switch import KillSwitch
from services.order.positions import OwnBook
from services.order.quotes import MarketDataQuotes
from services.order.repository import MIGRATIONS, SCHEMA, PostgresOrderStore
from services.order.server import POLICY, OrderServicer

log = logging.getLogger("services.order")
#: How long the plane waits at start for control's flags and market_data's ticks before it serves anyway.
STARTUP_WAIT_SECONDS = 3.0


async def run(config: OrderConfig) -> None:
    setup_tracing("order", config.server.otel_endpoint)
    metrics = await start_metrics("order")
    database = await Database.open(config.server, schema=SCHEMA, migrations=MIGRATIONS, writer="order")
    clock = WallClock()
    paper = None
    if config.broker == "paper":
        # The venue stands for an exchange: its own pool, committing without waiting for the WAL flush
        # (see services/order/brokers/venue_store.py for what that can and cannot lose).
        venue_pool = await connect_pool(database.url, max_size=2, server_settings={"synchronous_commit": "off"})
        venue_store = await PostgresVenueStore.open(venue_pool)
        paper = PaperBroker(venue_store, config.paper)
        await paper.load()
        venue = paper
    else:
        venue = await real_venue(config, database.pool)
    broker = BrokerGateway(with_fault(venue, config.fault), clock, rate_per_second=config.broker_rate_per_second,
                           attempts=config.broker_attempts)
    # A guard: control waits for its acknowledgement of each flag change before it answers.
    flags = FlagsFollower(config.peers.control, token=config.peers.token,
                          staleness_seconds=config.flags_staleness_seconds,
                          guard=f"order@{socket.gethostname()}:{os.getpid()}")
    book = OwnBook()
    follower = None
    exposure = None
    if config.positions_source == "position_plane":
        follower = ExposureFollower(config.peers.position, token=config.peers.token, account=config.account,
                                    staleness_seconds=config.exposure_staleness_seconds)
        exposure = StreamedExposure(follower, book, catch_up_seconds=config.exposure_catch_up_seconds)
    audit = await AuditOutbox.open(database.pool, SCHEMA, config.audit, config.peers.control,
                                   token=config.peers.token)
    engine = build_engine(store=PostgresOrderStore(database.pool), broker=broker, flags=flags, exposure=exposure,
                          limits=config.risk, clock=clock, book=book, journal=config.journal,
                          venue=config.venue_path, audit=audit)
    # Only the paper venue needs our quotes; a real venue fills against its own market.
    quotes = MarketDataQuotes(config.peers.market_data, paper.on_quote, token=config.peers.token) if paper else None
    await flags.start()
    if follower is not None:
        await follower.start()
    await engine.start()
    if quotes is not None:
        await quotes.start()
    await asyncio.gather(_flags_ready(flags, config), _quotes_open(quotes, config), _exposure_ready(follower, config))
    servicer = OrderServicer(engine, instruments=config.instruments, default_account=config.account,
                             broker_positions=broker.positions)
    host = host_for(config.server, [binding(order_pb2, "Order", order_pb2_grpc.add_OrderServicer_to_server,
                                            servicer)], POLICY)
    metrics.watch(host, orders=engine, streams=lambda: (engine.order_events, engine.fill_events), flags=flags)
    # A journal that cannot vouch for its memory says so where probes and load balancers look.
    engine.journal.on_problem(lambda problem: asyncio.ensure_future(host.set_serving(problem is None)))
    kill_switch = KillSwitch(flags, engine)
    kill_switch.start()

    async def on_stop() -> None:
        await kill_switch.stop()
        if quotes is not None:
            await quotes.stop()
        await engine.stop()
        await audit.close()
        if hasattr(venue, "close"):
            await venue.close()
        if paper is not None:
            await venue_store.close()
            await venue_pool.close()
        await flags.stop()
        if follower is not None:
            await follower.stop()
        await database.close()

    await serve(host, on_stop=on_stop)


async def _flags_ready(flags: FlagsFollower, config: OrderConfig) -> None:
    try:
        await flags.wait_ready(timeout=STARTUP_WAIT_SECONDS)
    except (TimeoutError, asyncio.TimeoutError):
        log.warning("no flag snapshot from control yet; orders are refused until it answers",
                    extra={"control": config.peers.control})


async def _quotes_open(quotes: MarketDataQuotes | None, config: OrderConfig) -> None:
    """The paper venue fills only at quotes it sees: serving before its tick stream is open
    would let the first ticks pushed into a fresh mesh pass it by."""
    if quotes is not None and not await quotes.wait_open(STARTUP_WAIT_SECONDS):
        log.warning("no tick stream from market_data yet; paper orders fill at quotes after it opens",
                    extra={"market_data": config.peers.market_data})


async def _exposure_ready(follower: ExposureFollower | None, config: OrderConfig) -> None:
    """Entries are judged on the position plane's view: serving before its first view would refuse
    the first entries of a fresh mesh (risk.exposure_stale) while both planes start together."""
    if follower is not None and not await follower.wait_for_fill_seq(0, STARTUP_WAIT_SECONDS):
        log.warning("no exposure view from the position plane yet; entries are refused until it arrives",
                    extra={"position": config.peers.position})


def main() -> None:
    try:
        config = OrderConfig.from_env(Env())
    except ConfigError as exc:
        print(f"order: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging("order", config.server.log_level)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
