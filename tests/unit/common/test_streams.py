import asyncio

import pytest

from services.common.errors import FailedPrecondition, ResourceExhausted
from services.common.streams import Broadcaster


async def take(iterator, count):
    out = []
    async for item in iterator:
        out.append(item)
        if len(out) == count:
            break
    return out


async def test_resume_replays_missed_events_then_live_without_gaps_or_duplicates():
    stream = Broadcaster[str](name="candles", ring_size=100, queue_size=100)
    for i in range(5):
        stream.publish(f"e{i + 1}")
    sub = stream.subscribe(after_seq=2)
    first = await anext(sub)
    stream.publish("e6")
    rest = await take(sub, 3)
    assert [first, *rest] == [(3, "e3"), (4, "e4"), (5, "e5"), (6, "e6")]


async def test_live_only_subscriber_sees_only_new_events_and_filters_apply():
    stream = Broadcaster[int](name="ticks")
    stream.publish(1)
    sub = stream.subscribe(after_seq=None, matches=lambda n: n % 2 == 0)
    task = asyncio.create_task(take(sub, 2))
    await asyncio.sleep(0)
    for n in (2, 3, 4):
        stream.publish(n)
    assert await task == [(2, 2), (4, 4)]


async def test_slow_subscriber_is_cut_off_and_fast_one_gets_everything():
    stream = Broadcaster[int](name="candles", queue_size=3)
    slow = stream.subscribe(after_seq=None)
    fast = stream.subscribe(after_seq=None)
    slow_first = asyncio.create_task(anext(slow))
    fast_all = asyncio.create_task(take(fast, 10))
    await asyncio.sleep(0)
    stream.publish(0)
    await asyncio.sleep(0)
    assert (await slow_first) == (1, 0)
    for n in range(1, 10):
        stream.publish(n)  # never blocks, whatever the slow one does
        await asyncio.sleep(0) if n % 2 else None
    assert [seq for seq, _ in await fast_all] == list(range(1, 11))
    received = []
    with pytest.raises(ResourceExhausted, match="resume_after_seq=4"):
        async for seq, _ in slow:
            received.append(seq)
    # no silent gap before the cut-off: everything queued arrives, and the resume seq is the last one seen
    assert received == [2, 3, 4]
    assert stream.dropped_subscribers == 1


async def test_resume_older_than_retention_is_refused():
    stream = Broadcaster[int](name="ticks", ring_size=3)
    for n in range(10):
        stream.publish(n)
    with pytest.raises(FailedPrecondition, match="older than the ticks events"):
        await anext(stream.subscribe(after_seq=2))
    with pytest.raises(FailedPrecondition, match="ahead of the ticks stream"):
        await anext(stream.subscribe(after_seq=99))


class ListBackfill:
    def __init__(self, events):
        self.stored = events

    async def oldest_seq(self):
        return self.stored[0][0] if self.stored else None

    async def events(self, after_seq, up_to_seq):
        for seq, payload in self.stored:
            if after_seq < seq <= up_to_seq:
                yield seq, payload


async def test_resume_reaches_past_the_ring_into_the_backfill():
    stored = [(seq, f"c{seq}") for seq in range(1, 11)]
    stream = Broadcaster[str](name="candles", ring_size=3, backfill=ListBackfill(stored))
    for seq, payload in stored:
        stream.publish(payload)
    got = await take(stream.subscribe(after_seq=0), 10)
    assert [seq for seq, _ in got] == list(range(1, 11))


def test_publish_with_explicit_seq_must_follow_on():
    stream = Broadcaster[str](name="fills", last_seq=41)
    assert stream.publish("x", seq=42) == 42
    with pytest.raises(ValueError, match="out of order"):
        stream.publish("y", seq=44)
