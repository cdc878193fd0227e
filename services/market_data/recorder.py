"""Durable before delivered: closed candles and factor sets are stored first, then streamed.

The engine hands each closed candle and factor set to `record_*`, which gives it the next seq
of its stream and queues it, without waiting. One writer task takes what is queued, stores it
in one transaction and only then publishes it to the streams, in seq order. A subscriber
therefore never holds a seq the database could lose: after a crash (kill -9 included) the
restarted plane's streams continue from the highest stored seq, which is at or above every seq
any subscriber received, and a resume with the last seq received is answered from PostgreSQL
with no gap and no duplicate. A candle closed but not yet stored at a crash was seen by no one;
the feed's ticks, sent again, rebuild it after the restart under a seq of the new run.

The plane's pool commits without waiting for the WAL flush (services/common/runtime.py,
wait_for_flush=False): a committed candle is visible and survives a kill -9 of this plane at
once; only a crash of PostgreSQL itself may lose the last few milliseconds, and the feed rebuilds
those candles.

Group commit without a timer: a batch is whatever queued while the previous transaction ran
(up to `_BATCH` events), so a burst (a replay, a large PublishTicks) costs one transaction per
batch and a quiet live feed one per candle, with no added wait. A failed write is retried with
the same batch and nothing behind it is published, so the streams stall rather than skip.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from services.common.streams import Broadcaster
from services.market_data.events import CandleEvent, FactorEvent
from services.market_data.repository import MarketDataRepository

log = logging.getLogger(__name__)

_BATCH = 1_000
_BACKLOG_WARNING = 50_000
_RETRY_SECONDS = 1.0


class Recorder(Protocol):
    """Where the engine hands closed candles and factor sets; each call returns the event's seq."""

    @property
    def last_candle_seq(self) -> int: ...
    @property
    def last_factor_seq(self) -> int: ...
    def record_candle(self, event: CandleEvent) -> int: ...
    def record_factors(self, event: FactorEvent) -> int: ...
    async def wait_published(self, candle_seq: int, factor_seq: int) -> None: ...


class PublishAtOnce:
    """The recorder of an engine with no database (benchmarks, in-process use): streams at once."""

    def __init__(self, candle_stream: Broadcaster[CandleEvent], factor_stream: Broadcaster[FactorEvent]) -> None:
        self._candles, self._factors = candle_stream, factor_stream

    @property
    def last_candle_seq(self) -> int:
        return self._candles.last_seq

    @property
    def last_factor_seq(self) -> int:
        return self._factors.last_seq

    def record_candle(self, event: CandleEvent) -> int:
        return self._candles.publish(event)

    def record_factors(self, event: FactorEvent) -> int:
        return self._factors.publish(event)

    async def wait_published(self, candle_seq: int, factor_seq: int) -> None:
        return


class CandleRecorder:
    """Stores, then publishes (see the module docstring). The streams' last seqs must be the
    highest stored ones when it is built: seqs continue from there."""

    def __init__(self, repository: MarketDataRepository, *, candle_stream: Broadcaster[CandleEvent],
                 factor_stream: Broadcaster[FactorEvent], retry_seconds: float = _RETRY_SECONDS) -> None:
        self._repository = repository
        self._retry_seconds = retry_seconds
        self._candles, self._factors = candle_stream, factor_stream
        self._last = {"c": candle_stream.last_seq, "f": factor_stream.last_seq}  # highest seq handed out
        # Unbounded on purpose: the hot path must never wait on the database; a growing
        # backlog is logged instead (it means PostgreSQL is slower than the market).
        self._queue: asyncio.Queue[tuple[str, int, CandleEvent | FactorEvent]] = asyncio.Queue()
        self._published = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self.stored = 0

    @property
    def last_candle_seq(self) -> int:
        return self._last["c"]

    @property
    def last_factor_seq(self) -> int:
        return self._last["f"]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="market-data-recorder")

    def record_candle(self, event: CandleEvent) -> int:
        return self._record("c", event)

    def record_factors(self, event: FactorEvent) -> int:
        return self._record("f", event)

    def _record(self, kind: str, event: CandleEvent | FactorEvent) -> int:
        seq = self._last[kind] = self._last[kind] + 1
        self._queue.put_nowait((kind, seq, event))
        if self._queue.qsize() == _BACKLOG_WARNING:
            log.warning("the candle writer is falling behind", extra={"backlog": _BACKLOG_WARNING})
        return seq

    async def wait_published(self, candle_seq: int, factor_seq: int) -> None:
        """Returns once the candles up to `candle_seq` and the factor sets up to `factor_seq`
        are stored and streamed."""
        async with self._published:
            await self._published.wait_for(
                lambda: self._candles.last_seq >= candle_seq and self._factors.last_seq >= factor_seq)

    async def flush(self) -> None:
        await self._queue.join()

    async def stop(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._store(batch)
            for kind, seq, event in batch:
                (self._candles if kind == "c" else self._factors).publish(event, seq=seq)
                self._queue.task_done()
            self.stored += len(batch)
            async with self._published:
                self._published.notify_all()

    async def _store(self, batch: list[tuple[str, int, CandleEvent | FactorEvent]]) -> None:
        candles = [(seq, e) for kind, seq, e in batch if kind == "c"]
        factors = [(seq, e) for kind, seq, e in batch if kind == "f"]
        while True:
            try:
                await self._repository.store(candles, factors)
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the batch and retry: a candle must not be lost to a blip
                log.exception("storing candles failed; retrying, and streaming nothing newer until it is stored",
                              extra={"batch": len(batch), "retry_seconds": self._retry_seconds})
                await asyncio.sleep(self._retry_seconds)
