"""Writes closed candles and factor sets to the database off the hot path.

The engine hands each event to `record_*` (no waiting); a writer task drains the queue in
small batches into one transaction each. `stop()` waits until everything handed over is
stored, so a candle closed before shutdown is in the database when shutdown completes.
"""

from __future__ import annotations

import asyncio
import logging

from services.market_data.events import CandleEvent, FactorEvent
from services.market_data.repository import MarketDataRepository

log = logging.getLogger(__name__)

_BATCH = 500
_BACKLOG_WARNING = 50_000


class CandleRecorder:
    def __init__(self, repository: MarketDataRepository, *, stored_candle_seq: int = 0,
                 stored_factor_seq: int = 0) -> None:
        self._repository = repository
        # Highest seq handed to the database per kind; seqs are queued in order, so everything
        # at or below it is stored (or was already there). Resumes reading the database wait on it.
        self._stored = {"c": stored_candle_seq, "f": stored_factor_seq}
        self._queued = dict(self._stored)
        self._progress = asyncio.Event()
        # Unbounded on purpose: the hot path must never wait on the database; a growing
        # backlog is logged instead (it means PostgreSQL is slower than the market).
        self._queue: asyncio.Queue[tuple[str, int, object]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self.stored = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="market-data-recorder")

    def record_candle(self, seq: int, event: CandleEvent) -> None:
        self._queue.put_nowait(("c", seq, event))
        self._queued["c"] = seq
        if self._queue.qsize() == _BACKLOG_WARNING:
            log.warning("the candle writer is falling behind", extra={"backlog": _BACKLOG_WARNING})

    def record_factors(self, seq: int, event: FactorEvent) -> None:
        self._queue.put_nowait(("f", seq, event))
        self._queued["f"] = seq

    async def wait_stored(self, kind: str, seq: int | None = None) -> None:
        """Returns once every event of `kind` ("c" candles, "f" factors) up to `seq` is stored
        (None: up to the last one handed over so far)."""
        if seq is None:
            seq = self._queued[kind]
        while self._stored[kind] < seq:
            self._progress.clear()
            await self._progress.wait()

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
            candles = [(seq, e) for kind, seq, e in batch if kind == "c"]
            factors = [(seq, e) for kind, seq, e in batch if kind == "f"]
            while True:
                try:
                    await self._repository.store(candles, factors)
                    self.stored += len(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep the batch and retry: a candle must not be lost to a blip
                    log.exception("storing candles failed; retrying in 1 s", extra={"batch": len(batch)})
                    await asyncio.sleep(1.0)
            for kind, seq, _ in batch:
                self._stored[kind] = max(self._stored[kind], seq)
                self._queue.task_done()
            self._progress.set()
