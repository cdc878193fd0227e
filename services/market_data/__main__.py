"""python -m services.market_data: the market-data plane's process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from quantmesh.market_data.v1 import market_data_pb2, market_data_pb2_grpc
from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import Database, host_for
from services.common.server import binding, serve
from services.common.telemetry import setup_tracing
from services.market_data.config import MarketDataConfig
from services.market_data.plane import MarketDataPlane
from services.market_data.repository import SCHEMA
from services.market_data.server import POLICY

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def run(config: MarketDataConfig) -> None:
    setup_tracing(config.server.service_name, config.server.otel_endpoint)
    metrics = await start_metrics("market_data")
    database = await Database.open(config.server, schema=SCHEMA, migrations=MIGRATIONS, writer="market_data",
                                   # Candles can be rebuilt from the feed; a step need not wait for the disk.
                                   wait_for_flush=False)
    plane = await MarketDataPlane.open(config, database.pool)
    host = host_for(config.server, [binding(market_data_pb2, "MarketData",
                                            market_data_pb2_grpc.add_MarketDataServicer_to_server, plane.servicer)],
                    policy=POLICY)
    metrics.watch(host, streams=lambda: (plane.engine.tick_stream, plane.engine.candle_stream,
                                         plane.engine.factor_stream))
    stop = asyncio.Event()

    async def end_streams_when_stopping() -> None:
        # Streams never end on their own; ending them first lets the drain finish at once.
        await stop.wait()
        await plane.stop_feed()
        plane.close_streams()

    watcher = asyncio.create_task(end_streams_when_stopping())

    async def on_stop() -> None:
        watcher.cancel()
        await plane.stop()  # every closed candle is stored before the process exits
        await database.close()

    plane.start()
    await serve(host, on_stop=on_stop, stop_event=stop)


def main() -> None:
    try:
        config = MarketDataConfig.from_env(Env())
    except ConfigError as exc:
        print(f"market-data: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(config.server.service_name, config.server.log_level)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
