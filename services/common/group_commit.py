"""Group commit: one writer task turns many callers' writes into one transaction.

Callers `await committer.commit(item)`; the writer takes whatever has queued (up to
`max_batch`), lingers at most `max_wait` seconds for more when the batch is small, hands
the batch to `write_batch`, and resolves every caller's future with its own result.
While one transaction is in flight the next batch gathers, so under load a commit is
shared by many callers without any caller waiting longer than one transaction.

Cancellation safety is the point. A caller that is cancelled (client deadline,
disconnect) stops waiting, but its item is already the writer's: the write happens, and
whatever the batch function does after the commit (advance seqs, publish events) happens
too. Nothing a caller does can interrupt the writer between a commit and its
consequences, which is how memory and the database stay in agreement.

`ImmediateCommit` has the same interface without a task: each item is written at once
in the caller's own flow. A backtest over an in-memory store uses it, so the order of
events is fixed by the data and never by task scheduling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Writes a batch and returns one result (or an exception instance) per item, in order.
BatchWriter = Callable[[Sequence[Item]], Awaitable[Sequence[object]]]


class CommitterStopped(RuntimeError):
    """The writer has stopped (shutdown, or a fault it could not repair); nothing was written."""


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write_batch: BatchWriter, *, name: str, max_batch: int = 256,
                 max_wait: float = 0.0) -> None:
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait at least 0")
        self.name = name
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"group-commit:{self.name}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def commit(self, item: Item) -> Result:
        """Queues `item` and waits for its result. Cancelling the wait never cancels the write."""
        if self._stopping or not self.running:
            raise CommitterStopped(f"the {self.name} writer is not running; nothing was written")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # a caller that left must not leave "never retrieved" noise
        self._queue.put_nowait((item, future))
        return await asyncio.shield(future)

    async def stop(self) -> None:
        """Writes what is queued, then stops."""
        self._stopping = True
        if self._task is None:
            return
        self._queue.put_nowait((None, None))  # wakes an idle writer; everything before it is written
        try:
            await self._task
        finally:
            self._task = None

    async def _run(self) -> None:
        while True:
            batch = await self._take()
            if batch is None:
                return
            items = [item for item, _ in batch]
            try:
                results = await self._write_batch(items)
            except BaseException as exc:  # the batch function decided the batch failed as a whole
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else CommitterStopped(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            self.batches += 1
            self.items += len(items)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _take(self) -> list[tuple[Item, asyncio.Future]] | None:
        first = await self._queue.get()
        if first[1] is None:
            return None
        batch = [first]
        self._drain_into(batch)
        if self._max_wait > 0 and len(batch) < self._max_batch:
            # Linger briefly so a burst that is still arriving shares this commit.
            await asyncio.sleep(self._max_wait)
            self._drain_into(batch)
        if batch[-1][1] is None:  # the stop marker: write what came before it, then stop next round
            batch.pop()
            self._queue.put_nowait((None, None))
            if not batch:
                return None
        return batch

    def _drain_into(self, batch: list) -> None:
        while len(batch) < self._max_batch and not self._queue.empty() and batch[-1][1] is not None:
            batch.append(self._queue.get_nowait())


class ImmediateCommit(Generic[Item, Result]):
    """The GroupCommit interface, writing each item at once in the caller's flow (no task)."""

    def __init__(self, write_batch: BatchWriter, *, name: str) -> None:
        self.name = name
        self._write_batch = write_batch
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        pass

    @property
    def running(self) -> bool:
        return True

    async def commit(self, item: Item) -> Result:
        (result,) = await self._write_batch([item])
        self.batches += 1
        self.items += 1
        if isinstance(result, BaseException):
            raise result
        return result

    async def stop(self) -> None:
        pass


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


__all__ = ["GroupCommit", "ImmediateCommit", "CommitterStopped", "BatchWriter"]
