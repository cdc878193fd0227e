"""Wires one market-data plane: repository, warm start, engine, feed task, servicer.

Used by __main__ and by in-process integration tests; the pure parts (CandleAggregator,
FactorEngine) are usable without any of this.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg

from services.common.streams import Broadcaster
from services.market_data.candles import CandleAggregator
from services.market_data.config import MarketDataConfig
from services.market_data.engine import MarketDataEngine
from services.market_data.events import CandleEvent, FactorEvent, TickEvent
from services.market_data.factors import FactorEngine
from services.market_data.feeds.base import Feed
from services.market_data.feeds.files import UnusableFile
from services.market_data.feeds.pacing import Pacing
from services.market_data.feeds.push import PushFeed
from services.market_data.feeds.replay import BarFilesFeed, TickFileFeed
from services.market_data.feeds.synthetic import SyntheticFeed, next_reopen, weekend_closed_at
from services.market_data.instruments import TIMEFRAMES, Timeframe, spec_for
from services.market_data.recorder import CandleRecorder
from services.market_data.repository import MarketDataRepository
from services.market_data.server import MarketDataService

log = logging.getLogger(__name__)

# Ticks are kept in memory only, so their seqs are not continued from a database: each start of
# the plane numbers its ticks from (start number - 1) * 2**40, above any seq an earlier run can
# have handed out. A subscriber resuming with a seq from before a restart is told those ticks
# are no longer retained, instead of being refused as "ahead" or answered with this run's ticks.
TICK_SEQS_PER_START = 1 << 40


def make_feed(config: MarketDataConfig) -> Feed:
    if config.feed.kind in ("oanda", "gmo", "ccxt"):
        from services.market_data.feeds.ccxt_feed import make_venue_feed  # real venues: only when configured

        return make_venue_feed(config.feed.kind, config.feed.exchange, config.instruments)
    if config.feed.kind == "replay":
        return TickFileFeed(config.feed.paths[0], instrument=config.instruments[0])
    if config.feed.kind == "bars":
        return BarFilesFeed(*config.feed.paths, instrument=config.instruments[0])
    if config.feed.kind == "push":
        return PushFeed(config.instruments)
    return SyntheticFeed(config.instruments, seed=config.synthetic_seed, start=config.synthetic_start)


async def warm_start(repository: MarketDataRepository, instruments: tuple[str, ...], aggregator: CandleAggregator,
                     factors: FactorEngine) -> None:
    """After a restart: factor series from the last stored candles, open buckets from stored S5 candles."""
    for instrument in instruments:
        for timeframe in TIMEFRAMES:
            factors.warm(await repository.recent_candles(instrument, timeframe, factors.history))
        closed_until = await repository.closed_until(instrument)
        finest = Timeframe.S5
        if finest not in closed_until:
            continue
        # Coarser buckets still open at shutdown start at or after the end of their last stored candle;
        # the stored S5 candles since the earliest such point rebuild them exactly.
        coarser = [closed_until.get(tf) for tf in TIMEFRAMES if tf is not finest]
        known = [moment for moment in coarser if moment is not None]
        since = min(known) if len(known) == len(coarser) else closed_until[finest] - timedelta(days=1)
        finer = await repository.candles_since(instrument, finest, since)
        aggregator.restore(instrument, finer, closed_until, last_tick_time=closed_until[finest])
        log.info("warm start", extra={"instrument": instrument, "resumes_at": closed_until[finest].isoformat(),
                                      "s5_candles_replayed": len(finer)})


async def _resuming(feed: Feed, config: MarketDataConfig, repository: MarketDataRepository) -> Feed:
    """A synthetic feed with no explicit start carries on after what is already stored.

    Ticks older than the stored candles are dropped as already seen on a restart, so a
    synthetic timeline that restarted "now" after an earlier fast-paced run (whose feed time
    ran ahead of the wall clock) would stay silent until it caught up.
    """
    if not isinstance(feed, SyntheticFeed) or config.synthetic_start is not None:
        return feed
    stored = [moment for instrument in feed.instruments
              if (moment := (await repository.closed_until(instrument)).get(Timeframe.S5)) is not None]
    if not stored or max(stored) <= feed.start:
        return feed
    log.info("synthetic feed resumes after the stored candles", extra={"start": max(stored).isoformat()})
    return SyntheticFeed(config.instruments, seed=config.synthetic_seed, start=max(stored))


class ReplayBehindStore(SystemExit):
    """A replay whose every tick is older than the candles already stored: it would replay nothing."""


async def _replay_start(config: MarketDataConfig, repository: MarketDataRepository) -> None:
    """A replay never rewinds the stored timeline: ticks older than the stored candles are skipped as
    already seen (that is how a restarted replay carries on where it stopped). A file that ends
    before them would replay nothing, silently; that stops the plane with a sentence instead.
    The file is read a second time (by a feed of its own, so the replay's counts stay right) only
    when its first tick is older than what is stored."""
    if config.feed.kind not in ("replay", "bars"):
        return
    instrument = config.instruments[0]
    stored = (await repository.closed_until(instrument)).get(Timeframe.S5)
    if stored is None:
        return
    first = last = None
    try:
        async for tick in make_feed(config).ticks():
            if first is None:
                first = tick.time
            last = tick.time
            if first >= stored:
                return  # the replay continues the stored timeline
    except UnusableFile:
        return  # the replay itself says what is wrong with the file
    if last is None:
        return
    if last >= stored:
        log.info("the replay resumes after the candles already stored; its earlier ticks are skipped as seen "
                 "(start on an empty database to replay it from the beginning)",
                 extra={"resumes_at": stored.isoformat(), "replay_starts": first.isoformat()})
        return
    message = (f"market_data: refusing to replay {config.feed.kind}:{','.join(p.name for p in config.feed.paths)}: "
               f"its ticks run from {first.isoformat()} to {last.isoformat()}, but this database already holds "
               f"{instrument} candles up to {stored.isoformat()} (an earlier run's timeline), and a replay never "
               "rewinds it: every tick would be skipped as already seen. Replay on an empty database: "
               "quantmesh up --data-dir <a new folder> --replay ... (or delete the old data folder), or a new "
               "database on DATABASE_URL.")
    log.error(message, extra={"stored_until": stored.isoformat(), "replay_ends": last.isoformat()})
    raise ReplayBehindStore(message)


class MarketDataPlane:
    def __init__(self, *, config: MarketDataConfig, feed: Feed, engine: MarketDataEngine,
                 recorder: CandleRecorder, repository: MarketDataRepository) -> None:
        self.config = config
        self.feed = feed
        self.engine = engine
        self.recorder = recorder
        self.repository = repository
        self.servicer = MarketDataService(engine, repository, pushed=isinstance(feed, PushFeed))
        self.pacing = Pacing(config.speed, skip_closures=config.skip_closures)
        self._feed_task: asyncio.Task | None = None
        self.feed_done = asyncio.Event()

    @classmethod
    async def open(cls, config: MarketDataConfig, pool: asyncpg.Pool, *, feed: Feed | None = None) -> "MarketDataPlane":
        repository = MarketDataRepository(pool)
        if feed is None:
            await _replay_start(config, repository)
            feed = await _resuming(make_feed(config), config, repository)
        candle_seq, factor_seq = await repository.last_seqs()
        first_tick_seq = (await repository.record_start() - 1) * TICK_SEQS_PER_START
        aggregator = CandleAggregator()
        factors = FactorEngine(config.factors, history=config.factor_history)
        await warm_start(repository, tuple(feed.instruments), aggregator, factors)
        # The candle and factor streams hold stored events only (the recorder publishes after
        # storing), so a resume that reaches past their rings reads PostgreSQL without waiting.
        candle_stream = Broadcaster[CandleEvent](name="candle", ring_size=config.stream_ring,
                                                 queue_size=config.stream_queue,
                                                 backfill=repository.candle_backfill(), last_seq=candle_seq)
        factor_stream = Broadcaster[FactorEvent](name="factor", ring_size=config.stream_ring,
                                                 queue_size=config.stream_queue,
                                                 backfill=repository.factor_backfill(), last_seq=factor_seq)
        recorder = CandleRecorder(repository, candle_stream=candle_stream, factor_stream=factor_stream)
        engine = MarketDataEngine(
            instruments=[spec_for(s) for s in feed.instruments], feed_name=feed.name, aggregator=aggregator,
            factors=factors,
            tick_stream=Broadcaster[TickEvent](name="tick", ring_size=config.tick_window * len(feed.instruments),
                                               queue_size=config.stream_queue, last_seq=first_tick_seq),
            candle_stream=candle_stream, factor_stream=factor_stream, tick_window=config.tick_window,
            recorder=recorder)
        return cls(config=config, feed=feed, engine=engine, recorder=recorder, repository=repository)

    def start(self) -> None:
        self.recorder.start()
        if isinstance(self.feed, PushFeed):
            # The publisher owns the timeline: no feed task and no wall-clock keep_time, so candles
            # close only on published ticks, exactly as in the in-process backtest.
            log.info("waiting for ticks over PublishTicks", extra={"feed": self.feed.name,
                                                                   "instruments": list(self.feed.instruments)})
            return
        self._feed_task = asyncio.create_task(self._run_feed(), name="market-data-feed")

    async def _run_feed(self) -> None:
        log.info("feed started", extra={"feed": self.feed.name, "speed": str(self.config.speed)})
        if isinstance(self.feed, SyntheticFeed) and weekend_closed_at(self.feed.start) and self.config.skip_closures:
            log.info("the synthetic FX market is closed for the weekend; skipping to the reopen "
                     "(QUANTMESH_SKIP_CLOSURES)", extra={"reopens": next_reopen(self.feed.start).isoformat()})
        elif isinstance(self.feed, SyntheticFeed) and weekend_closed_at(self.feed.start):
            log.info("the synthetic FX market is closed for the weekend; FX ticks resume on Sunday 22:00 UTC "
                     "(set QUANTMESH_SYNTHETIC_START to a weekday to trade now)",
                     extra={"reopens": next_reopen(self.feed.start).isoformat()})
        try:
            if isinstance(self.feed, TickFileFeed):
                layout = self.feed.layout
                log.info(f"replaying {self.feed.path} as {layout.description}; {layout.timezone_note}",
                         extra={"feed": self.feed.name})
            await self.pacing.run(self.feed, self.engine.on_tick, self.engine.on_time)
        except UnusableFile as exc:
            log.error(f"the feed gave no tick: {exc}", extra={"feed": self.feed.name})
        except Exception:
            log.exception("the feed failed; the plane keeps serving what it has", extra={"feed": self.feed.name})
        finally:
            self.engine.feed_ended = True
            self.feed_done.set()
        stats = getattr(self.feed, "stats", None)
        if stats is not None and stats.malformed:
            log.warning(stats.summary(self.feed.name), extra={"feed": self.feed.name, "malformed_rows": stats.malformed})
        log.info("feed ended; streams stay open and GetQuote returns the last tick", extra={
            "feed": self.feed.name, "ticks_accepted": self.engine.ticks_accepted,
            "late_ticks": sum(self.engine.aggregator.late_ticks.values()),
            "rows_read": getattr(stats, "rows_read", None), "malformed_rows": getattr(stats, "malformed", None)})
        await self.pacing.keep_time(self.engine.on_time)

    async def stop_feed(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
            try:
                await self._feed_task
            except asyncio.CancelledError:
                pass
            self._feed_task = None

    def close_streams(self) -> None:
        for stream in (self.engine.tick_stream, self.engine.candle_stream, self.engine.factor_stream):
            stream.close()

    async def stop(self) -> None:
        """Stops the feed, ends the streams and waits until every closed candle is stored."""
        await self.stop_feed()
        self.close_streams()
        await self.recorder.stop()
