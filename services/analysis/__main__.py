"""`python -m services.analysis`: the analysis plane's process."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta
from pathlib import Path

from services.analysis.board import SettingsBoard
from services.analysis.config import AnalysisConfig
from services.analysis.engine import AnalysisEngine
from services.analysis.feeds import CandleFollower, FillFollower
from services.analysis.repository import SCHEMA, AnalysisRepository
from services.analysis.server import ANALYSIS_POLICY, AnalysisServicer, analysis_binding
from services.common.audit import AuditOutbox
from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import Database, host_for, when_set
from services.common.server import serve
from services.common.telemetry import setup_tracing
from services.strategies.tuning import CatalogueRules

log = logging.getLogger("services.analysis")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PRUNE_EVERY_SECONDS = 3600


async def main(config: AnalysisConfig) -> None:
    server, peers, settings = config.server, config.peers, config.settings
    configure_logging(server.service_name, server.log_level)
    setup_tracing(server.service_name, server.otel_endpoint)
    metrics = await start_metrics("analysis")
    database = await Database.open(server, schema=SCHEMA, migrations=MIGRATIONS, writer="analysis")
    clock = WallClock()
    repository = AnalysisRepository(database.pool)
    audit = await AuditOutbox.open(database.pool, SCHEMA, config.audit, peers.control, token=peers.token)
    # The strategies' own typed params say what may be set and within which bounds: the same
    # code the workers check a new version with.
    board = await SettingsBoard(repository, audit=audit, clock=clock, rules=CatalogueRules()).load()
    engine = await AnalysisEngine.open(repository, board, settings, clock)
    log.info("trades rebuilt from the stored fills", extra={"last_fill_seq": engine.last_fill_seq,
                                                             "trades": len(engine.trades.closed)})
    history = settings.ranges.regime_window + settings.ranges.atr_period + 1
    tasks = [asyncio.create_task(FillFollower(engine, peers.order, token=peers.token).run(), name="fills"),
             asyncio.create_task(CandleFollower(engine, peers.market_data, timeframe=settings.timeframe,
                                                history=history, token=peers.token).run(), name="candles"),
             asyncio.create_task(engine.run_policy(), name="policy")]
    if config.hold_retention_days:
        tasks.append(asyncio.create_task(prune_holds_forever(repository, clock, config.hold_retention_days),
                                         name="hold retention"))
    servicer = AnalysisServicer(engine, clock=clock, heartbeat_seconds=config.heartbeat_seconds)
    host = host_for(server, [analysis_binding(servicer)], ANALYSIS_POLICY)
    metrics.watch(host)
    stop = asyncio.Event()
    # WatchStrategySettings streams never end by themselves: end them as soon as the stop is requested.
    tasks.append(asyncio.create_task(when_set(stop, board.close), name="end watches"))

    async def on_stop() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await audit.close()
        await database.close()

    await serve(host, on_stop=on_stop, stop_event=stop)


async def prune_holds_forever(repository: AnalysisRepository, clock: WallClock, days: int) -> None:
    """At start and then hourly: hold and skip signals older than `days` go (the rest stay)."""
    while True:
        try:
            pruned = await repository.prune_holds(clock.now() - timedelta(days=days))
            if pruned:
                log.info("pruned hold and skip signals", extra={"signals": pruned, "older_than_days": days})
        except Exception:  # the database is away: the next round tries again
            log.exception("pruning hold and skip signals failed; the next round tries again")
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


def run() -> int:
    try:
        config = AnalysisConfig.from_env(Env())
    except ConfigError as exc:
        print(f"analysis: {exc}", file=sys.stderr)
        return 2
    asyncio.run(main(config))
    return 0


if __name__ == "__main__":
    sys.exit(run())
