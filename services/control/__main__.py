"""`python -m services.control`: the control plane process."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import Database, host_for
from services.common.server import serve
from services.common.telemetry import setup_tracing
from services.control.config import ControlConfig
from services.control.engine import ControlEngine
from services.control.repository import SCHEMA, FlagsRepository
from services.control.server import CONTROL_POLICY, ControlServicer, control_binding

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def main(config: ControlConfig) -> None:
    configure_logging(config.server.service_name, config.server.log_level)
    setup_tracing(config.server.service_name, config.server.otel_endpoint)
    metrics = await start_metrics("control")
    database = await Database.open(config.server, schema=SCHEMA, migrations=MIGRATIONS, writer="control")
    clock = WallClock()
    engine = await ControlEngine.open(FlagsRepository(database.pool), clock=clock,
                                      watch_queue_size=config.watch_queue_size,
                                      guard_ack_seconds=config.guard_ack_seconds, identity=config.audit)
    servicer = ControlServicer(engine, clock=clock, heartbeat_seconds=config.heartbeat_seconds)
    host = host_for(config.server, [control_binding(servicer)], CONTROL_POLICY)
    metrics.watch(host, trading_state=lambda: engine.current.state.trading_state.value)
    stop = asyncio.Event()

    async def end_watches_on_stop() -> None:
        # WatchFlags streams never end by themselves; ending them when the stop
        # is requested lets the drain finish at once instead of after the grace period.
        await stop.wait()
        engine.close_watches()

    closer = asyncio.create_task(end_watches_on_stop())
    try:
        await serve(host, on_stop=database.close, stop_event=stop)
    finally:
        closer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closer


def run() -> int:
    try:
        config = ControlConfig.from_env(Env())
    except ConfigError as exc:
        print(f"control: {exc}", file=sys.stderr)
        return 2
    asyncio.run(main(config))
    return 0


if __name__ == "__main__":
    sys.exit(run())
