"""Fan-out of flag snapshots to WatchFlags subscribers, with bounded queues.

Why not `services.common.streams.Broadcaster`, whose subscriptions are async
generators: WatchFlags needs (1) a subscription registered when it is created, in
the same step as reading the current snapshot, so nothing falls between the two
(a generator registers only on its first read), and (2) reads that survive a
timeout: the heartbeat is a `wait_for` around `next()`, and cancelling a generator's
`anext()` ends the generator. Flags also need no replay by seq: every message is
the full snapshot, and a reconnect starts from the current one.

Like the Broadcaster, a slot is reserved for the close marker: a subscriber that
falls more than `queue_size` versions behind still gets every version up to the
cut, in order, then RESOURCE_EXHAUSTED (and reconnects for the full snapshot).
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from services.common.errors import ResourceExhausted

T = TypeVar("T")

_CLOSED = object()


class Subscription(Generic[T]):
    def __init__(self, fanout: "SnapshotFanout[T]", queue_size: int) -> None:
        self._fanout = fanout
        self._queue_size = queue_size
        # One slot more than the events allowed, so the end marker always fits.
        self._queue: asyncio.Queue = asyncio.Queue(queue_size + 1)
        self.overflowed = False
        self._ended = False
        self.last_version = 0

    def _offer(self, version: int, item: T) -> None:
        if self._ended:
            return
        if self._queue.qsize() >= self._queue_size:
            self.overflowed = True
            self._end()
            return
        self._queue.put_nowait((version, item))

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_CLOSED)

    async def next(self) -> tuple[int, T]:
        """The next (version, snapshot); StopAsyncIteration when closed, ResourceExhausted when cut off."""
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later reads end the same way
            self.close()
            if self.overflowed:
                raise ResourceExhausted(
                    f"this watcher fell more than {self._queue_size} flag versions behind (last delivered "
                    f"version {self.last_version}) and was cut off; reconnect to get the full snapshot")
            raise StopAsyncIteration
        self.last_version = item[0]
        return item

    def __aiter__(self) -> "Subscription[T]":
        return self

    async def __anext__(self) -> tuple[int, T]:
        return await self.next()

    def close(self) -> None:
        self._fanout._subscriptions.discard(self)


class SnapshotFanout(Generic[T]):
    def __init__(self, *, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._subscriptions: set[Subscription[T]] = set()
        self.dropped = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def subscribe(self) -> Subscription[T]:
        subscription: Subscription[T] = Subscription(self, self._queue_size)
        self._subscriptions.add(subscription)
        return subscription

    def publish(self, version: int, item: T) -> None:
        """Offers a version to every subscriber without waiting on any of them."""
        for subscription in tuple(self._subscriptions):
            subscription._offer(version, item)
            if subscription.overflowed:
                self._subscriptions.discard(subscription)
                self.dropped += 1

    def close(self) -> None:
        """Ends every subscription after what it has queued (server shutdown)."""
        for subscription in tuple(self._subscriptions):
            subscription._end()
        self._subscriptions.clear()
