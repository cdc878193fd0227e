"""The console's fan-out to open pages (services/console/live.py): latest values first, slow pages dropped."""

from __future__ import annotations

import asyncio

from services.console.live import PAGE_QUEUE, LiveBoard


def board() -> LiveBoard:
    return LiveBoard(planes=None, workers=None, flags=None, exposure=None, alerts=None, poll_seconds=1.0)


async def test_a_page_gets_the_latest_of_each_topic_then_every_change():
    live = board()
    live.publish("flags", {"version": 1})
    live.publish("flags", {"version": 2})
    live.publish("order", {"order_id": "ord-1"})  # an event, not a state: not replayed to a new page
    page = live.follow(quiet_seconds=0.05)
    assert await page.__anext__() == ("flags", {"version": 2})
    live.publish("positions", {"last_fill_seq": 3})
    assert await page.__anext__() == ("positions", {"last_fill_seq": 3})
    assert await page.__anext__() == ("keepalive", None)
    await page.aclose()


async def test_a_page_that_stops_reading_is_dropped_and_the_others_keep_up():
    live = board()
    slow, quick = live.follow(), live.follow()
    first = asyncio.ensure_future(slow.__anext__())
    await asyncio.sleep(0)
    received = []

    async def read_quick():
        async for topic, data in quick:
            received.append(data["n"])
            if data["n"] == PAGE_QUEUE + 10:
                return

    reader = asyncio.ensure_future(read_quick())
    await asyncio.sleep(0)
    for n in range(PAGE_QUEUE + 11):
        live.publish("order", {"n": n})
        await asyncio.sleep(0)
    await asyncio.wait_for(reader, 5)
    assert received == list(range(PAGE_QUEUE + 11))
    assert (await first)[1] == {"n": 0}
    rest = [item async for item in slow]  # what was queued, then the end: its EventSource reconnects
    assert len(rest) < PAGE_QUEUE + 10
