"""Resumable, bounded fan-out of sequenced events.

One `Broadcaster` per stream kind (candles, factors, ticks, orders, fills, positions).
Every event gets a seq one higher than the last. A subscriber:

- registers its bounded queue *before* it replays, so no event published during
  the replay is lost, then replays from the database (older than the in-memory
  ring) and from the ring, and then drains live events, skipping seqs it already
  yielded: no gap, no duplicate;
- that falls more than `queue_size` events behind is cut off with
  RESOURCE_EXHAUSTED, naming the seq to resume after. `publish` never waits on a
  subscriber, so a slow one never delays the others.

A resume seq older than anything retained (ring and database) is refused with
FAILED_PRECONDITION rather than answered with a silent gap.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from services.common.errors import FailedPrecondition, ResourceExhausted

T = TypeVar("T")


class Backfill(Protocol[T]):
    """Older events kept in a database, for resumes that reach past the ring."""

    async def oldest_seq(self) -> int | None:
        """Lowest seq still stored, or None when nothing is stored."""

    def events(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, T]]:
        """Stored events with after_seq < seq <= up_to_seq, in seq order."""


@dataclass(slots=True, eq=False)  # identity hash: each subscription is its own
class _Subscriber(Generic[T]):
    queue: asyncio.Queue
    matches: Callable[[T], bool]
    overflowed: bool = False
    number: int = 0
    delivered_seq: int = 0  # the last seq handed to this subscriber
    replaying: bool = False


@dataclass(frozen=True, slots=True)
class SubscriberGauge:
    """One subscriber as metrics see it: events queued for it and how far behind the stream it is."""

    number: int
    queued: int
    behind: int


_CLOSED = object()


class Broadcaster(Generic[T]):
    def __init__(self, *, name: str, ring_size: int = 10_000, queue_size: int = 1_000,
                 backfill: Backfill[T] | None = None, last_seq: int = 0) -> None:
        if ring_size < 1 or queue_size < 1:
            raise ValueError("ring_size and queue_size must be at least 1")
        self.name = name
        self._ring: collections.deque[tuple[int, T]] = collections.deque(maxlen=ring_size)
        self._queue_size = queue_size
        self._backfill = backfill
        self._last_seq = last_seq
        self._subscribers: set[_Subscriber[T]] = set()
        self._subscriptions = 0
        self.dropped_subscribers = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscriber_gauges(self) -> list[SubscriberGauge]:
        """Queue depth and lag of every current subscriber (read by services/common/metrics.py).

        A subscriber with nothing queued and no replay running has seen every event meant for
        it, so it is 0 behind even when a filter made it skip the newest seqs."""
        return [SubscriberGauge(number=sub.number, queued=sub.queue.qsize(),
                                behind=max(0, self._last_seq - sub.delivered_seq)
                                if sub.replaying or not sub.queue.empty() else 0)
                for sub in tuple(self._subscribers)]

    def publish(self, payload: T, *, seq: int | None = None) -> int:
        """Adds an event and offers it to every subscriber without waiting.

        `seq` may be given by a plane that assigns seqs in its database; it must
        then be exactly one higher than the previous seq.
        """
        expected = self._last_seq + 1
        if seq is not None and seq != expected:
            raise ValueError(f"{self.name}: seq {seq} published out of order (expected {expected})")
        self._last_seq = expected
        event = (expected, payload)
        self._ring.append(event)
        for sub in tuple(self._subscribers):
            if sub.overflowed or not sub.matches(payload):
                continue
            if sub.queue.qsize() >= self._queue_size:
                # The last slot is reserved for the close marker: the subscriber gets every
                # event it was given, then learns it was cut off, and resumes after the last
                # one it saw. Never drop a queued event to make room.
                sub.overflowed = True
                self.dropped_subscribers += 1
                sub.queue.put_nowait(_CLOSED)
                continue
            sub.queue.put_nowait(event)
        return expected

    def close(self) -> None:
        """Ends every subscription (server shutdown)."""
        for sub in tuple(self._subscribers):
            while True:
                try:
                    sub.queue.put_nowait(_CLOSED)
                    break
                except asyncio.QueueFull:
                    sub.queue.get_nowait()

    async def subscribe(self, *, after_seq: int | None,
                        matches: Callable[[T], bool] = lambda _: True,
                        registered: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[tuple[int, T]]:
        """Yields (seq, payload): the replay after `after_seq` (None: none), then live events.

        `registered` is awaited once the subscriber's queue is in place: from then on no event
        is missed, so a server can tell its client so (e.g. by sending initial metadata)."""
        self._subscriptions += 1
        sub: _Subscriber[T] = _Subscriber(queue=asyncio.Queue(self._queue_size + 1), matches=matches,
                                          number=self._subscriptions, replaying=after_seq is not None)
        self._subscribers.add(sub)
        try:
            if registered is not None:
                await registered()
            last_yielded = self._last_seq if after_seq is None else after_seq
            sub.delivered_seq = last_yielded
            if after_seq is not None:
                if after_seq > self._last_seq:
                    raise FailedPrecondition(
                        f"resume_after_seq {after_seq} is ahead of the {self.name} stream, whose last seq is "
                        f"{self._last_seq}; resume from a seq you received from this server"
                    )
                replay_up_to = self._last_seq
                ring = tuple(self._ring)
                ring_oldest = ring[0][0] if ring else replay_up_to + 1
                if after_seq + 1 < ring_oldest:
                    async for seq, payload in self._replay_backfill(after_seq, ring_oldest - 1):
                        if matches(payload):
                            sub.delivered_seq = seq
                            yield seq, payload
                        last_yielded = seq
                for seq, payload in ring:
                    if after_seq < seq <= replay_up_to and seq > last_yielded:
                        if matches(payload):
                            sub.delivered_seq = seq
                            yield seq, payload
                        last_yielded = seq
                last_yielded = max(last_yielded, replay_up_to)
                sub.replaying = False
            while True:
                item = await sub.queue.get()
                if item is _CLOSED:
                    if sub.overflowed:
                        raise ResourceExhausted(
                            f"this subscriber fell more than {self._queue_size} {self.name} events behind and was "
                            f"cut off; resume with resume_after_seq={last_yielded}"
                        )
                    return
                seq, payload = item
                if seq <= last_yielded:
                    continue  # already replayed
                last_yielded = seq
                sub.delivered_seq = seq
                yield seq, payload
        finally:
            self._subscribers.discard(sub)

    async def _replay_backfill(self, after_seq: int, up_to_seq: int) -> AsyncIterator[tuple[int, T]]:
        oldest = await self._backfill.oldest_seq() if self._backfill is not None else None
        if oldest is None or after_seq + 1 < oldest:
            retained = oldest if oldest is not None else (self._ring[0][0] if self._ring else self._last_seq + 1)
            raise FailedPrecondition(
                f"resume_after_seq {after_seq} is older than the {self.name} events this server retains "
                f"(oldest retained seq is {retained}); reload history (e.g. GetCandles) and resume from there"
            )
        async for event in self._backfill.events(after_seq, up_to_seq):
            yield event
