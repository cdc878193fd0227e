"""Run one worker: `python -m services.strategies SLUG --role entry|exit [--param NAME=VALUE ...]`.

`python -m services.strategies --list` prints the catalogue with each strategy's params.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from quantmesh.strategy.v1 import strategy_pb2, strategy_pb2_grpc
from services.common.channels import open_channel
from services.common.clock import WallClock
from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics
from services.common.runtime import host_for
from services.common.server import binding, serve
from services.common.telemetry import setup_tracing
from services.common.exposure import ExposureFollower
from services.common.strategy_settings import SettingsFollower
from services.strategies.adapters import GrpcMarket, GrpcOrders, StreamedPositions
from services.strategies.config import WorkerConfig
from services.strategies.params import StrategyConfigError, params_as_text
from services.strategies.registry import describe, load_strategy
from services.strategies.sdk import StrategyHarness
from services.strategies.server import StrategyStatusServicer
from services.strategies.signals import SignalOutbox, SignalRecorder
from services.strategies.status import WorkerStatus
from services.strategies.tuning import Tuning
from services.strategies.worker import StrategyWorker

log = logging.getLogger("services.strategies")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.strategies", description=__doc__)
    parser.add_argument("slug", nargs="?", help="strategy slug, e.g. ma_cross")
    parser.add_argument("--role", choices=("entry", "exit"), help="which half of the strategy to run")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="strategy parameter")
    parser.add_argument("--list", action="store_true", help="list the strategies and their params")
    args = parser.parse_args(argv)
    if not args.list and (not args.slug or not args.role):
        parser.error("give a strategy slug and --role entry|exit (or --list)")
    return args


async def run(config: WorkerConfig) -> None:
    from services.common.flags import FlagsFollower  # the control client library

    strategy = load_strategy(config.slug, config.params)
    metrics = await start_metrics(f"strategy.{config.slug}.{config.role}")
    harness = StrategyHarness(strategy, logging.getLogger(f"strategy.{config.slug}"))
    clock = WallClock()
    status = WorkerStatus(slug=config.slug, role=config.role, started=clock.now(),
                          params=params_as_text(strategy.params))
    token = config.peers.token
    market_channel = open_channel(config.peers.market_data, token=token)
    order_channel = open_channel(config.peers.order, token=token)
    flags = FlagsFollower(config.peers.control, token=token, staleness_seconds=config.flag_staleness_seconds)
    positions = ExposureFollower(config.peers.position, token=token, account=config.account,
                                 strategies=(config.slug,), instruments=(strategy.params.instrument,),
                                 staleness_seconds=config.positions_staleness_seconds)
    # The analysis plane, where one is configured: settings applied at each decision, every decision recorded.
    settings = outbox = signals = None
    if config.peers.analysis is not None:
        settings = SettingsFollower(config.peers.analysis, config.slug, token=token, start_params=status.params)
        outbox = SignalOutbox(config.peers.analysis, token=token)
        signals = SignalRecorder(harness=harness, role=config.role, instrument=strategy.params.instrument,
                                 outbox=outbox)
    worker = StrategyWorker(harness=harness, role=config.role, market=GrpcMarket(market_channel),
                            positions=StreamedPositions(positions),
                            orders=GrpcOrders(order_channel, config.account), flags=flags, status=status,
                            signals=signals, tuning=Tuning(strategy, settings))
    host = host_for(config.server, [binding(strategy_pb2, "Strategy", strategy_pb2_grpc.add_StrategyServicer_to_server,
                                            StrategyStatusServicer(status, harness))], policy={})
    metrics.watch(host, worker=status, flags=flags)
    stop = asyncio.Event()
    await flags.start()
    await positions.start()
    following = None
    if settings is not None:
        await outbox.start()
        following = asyncio.create_task(settings.run(), name="settings")
        try:  # the policy may have turned entries off: do not trade the first candles at full size
            await settings.wait_ready(config.analysis_wait_seconds)
        except asyncio.TimeoutError:
            log.warning("no settings from analysis at %s yet; deciding on the start params until they come",
                        config.peers.analysis)
    worker_task = asyncio.create_task(worker.run(stop))

    async def on_stop() -> None:
        stop.set()
        await asyncio.gather(worker_task, return_exceptions=True)
        await flags.stop()
        await positions.stop()
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            await outbox.stop()
        for channel in (market_channel, order_channel):
            await channel.close()

    await serve(host, on_stop=on_stop, stop_event=stop)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for entry in describe():
            params = ", ".join(f"{k}={v}" for k, v in entry["params"].items())
            print(f"{entry['slug']:<24} {'/'.join(entry['timeframes']):<12} {entry['summary']}\n{'':<24} {params}")
        return 0
    try:
        config = WorkerConfig.from_env(Env(), slug=args.slug, role=args.role, cli_params=args.param)
        load_strategy(config.slug, config.params)  # refuse to start on a bad slug or params, before any I/O
    except (ConfigError, StrategyConfigError) as exc:
        print(f"quantmesh strategy worker: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.server.service_name, config.server.log_level)
    setup_tracing(config.server.service_name, config.server.otel_endpoint)
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
