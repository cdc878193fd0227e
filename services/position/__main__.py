"""`python -m services.position`: the position plane's process."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import Database, host_for
from services.common.server import binding, serve
from services.common.telemetry import setup_tracing
from services.position.config import PositionConfig
from services.common.audit import AuditOutbox
from services.position.engine import PositionEngine
from services.position.reconciler import Reconciler
from services.position.feeds import BrokerPositionsClient, FillFollower, FinancingFollower, MarkFollower, cancel_all
from services.position.repository import PostgresLedgerStore
from services.position.server import AUTH_POLICY, PositionServicer

log = logging.getLogger("services.position")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def main(config: PositionConfig) -> None:
    server = config.server
    configure_logging(server.service_name, server.log_level)
    setup_tracing(server.service_name, server.otel_endpoint)
    metrics = await start_metrics("position")
    database = await Database.open(server, schema="positions", migrations=MIGRATIONS, writer="position")
    engine = await PositionEngine.open(store=PostgresLedgerStore(database.pool), clock=WallClock(),
                                       starting_cash=config.starting_cash, default_account=config.account,
                                       currency=config.currency, calendar=config.trading_day,
                                       financing=config.financing_rates)
    log.info("ledger rebuilt from the state tables", extra={
        "last_fill_seq": engine.last_fill_seq, "accounts": engine.ledger.accounts()})
    peers = config.peers
    broker = BrokerPositionsClient(peers.order, token=peers.token)
    audit = await AuditOutbox.open(database.pool, "positions", config.audit, peers.control, token=peers.token)
    reconciler = Reconciler(engine, broker, audit, config.reconcile, account=config.account)
    tasks = [asyncio.create_task(FillFollower(engine, peers.order, token=peers.token).run(), name="fills"),
             asyncio.create_task(MarkFollower(engine, peers.market_data, token=peers.token).run(), name="marks"),
             asyncio.create_task(reconciler.run(), name="reconciliation")]
    if config.financing_source == "venue":
        tasks.append(asyncio.create_task(FinancingFollower(engine, peers.order, token=peers.token,
                                                           poll_seconds=config.financing_poll_seconds).run(),
                                         name="venue financing"))
    servicer = PositionServicer(engine, broker, heartbeat_seconds=config.exposure_heartbeat_seconds, audit=audit)
    host = host_for(server, [binding(position_pb2, "Position", position_pb2_grpc.add_PositionServicer_to_server,
                                     servicer)], AUTH_POLICY)
    metrics.watch(host, streams=lambda: (engine.changes,), account=lambda: engine.snapshot().account)

    async def on_stop() -> None:
        await cancel_all(tasks)
        await audit.close()
        await engine.close()
        await broker.close()
        await database.close()

    await serve(host, on_stop=on_stop)


def run() -> None:
    try:
        config = PositionConfig.from_env(Env())
    except ConfigError as exc:
        print(f"position: {exc}", file=sys.stderr)
        sys.exit(2)
    asyncio.run(main(config))


if __name__ == "__main__":
    run()
