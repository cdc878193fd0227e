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


class _Audit:
    def __init__(self) -> None:
        self.entries = []

    async def reconciliation_entries(self):
        return sorted(self.entries, key=lambda e: -e.id)


class _Rules:
    def __init__(self) -> None:
        self.calls = []

    def reconciliation(self, differences):
        found = list(differences)
        if found:
            self.calls.append(found)


async def test_reconciliation_decisions_after_the_first_look_become_one_alert_each_poll():
    from quantmesh.control.v1 import control_pb2

    audit, rules = _Audit(), _Rules()
    live = LiveBoard(planes=audit, workers=None, flags=None, exposure=None, alerts=rules, poll_seconds=1.0)
    audit.entries.append(control_pb2.AuditEntry(id=4, event="reconciliation", subject="USD_JPY", old_value="0",
                                                new_value="1000", reason="adopted the venue's position"))
    await live._reconciliation_alerts()  # the first look: decided before the console started
    assert rules.calls == []
    audit.entries += [control_pb2.AuditEntry(id=9, event="reconciliation", subject="EUR_USD", old_value="500",
                                             new_value="0", reason="held for an operator: entries refused"),
                      control_pb2.AuditEntry(id=7, event="reconciliation", subject="USD_JPY", old_value="1000",
                                             new_value="0", reason="held for an operator: entries refused")]
    await live._reconciliation_alerts()
    (found,) = rules.calls
    assert [(d.instrument, d.ledger_quantity, d.broker_quantity) for d in found] == [("USD_JPY", "1000", "0"),
                                                                                     ("EUR_USD", "500", "0")]
    assert found[0].decision.startswith("held for an operator")
    await live._reconciliation_alerts()  # nothing new: no second alert
    assert len(rules.calls) == 1
