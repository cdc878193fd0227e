"""The writer lease against a real PostgreSQL: refusal naming the holder, standby and takeover,
a holder whose session ends, a holder that goes silent (hangs), and the recorded events."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import time

import asyncpg
import pytest

from services.common.config import WriterLeaseSettings
from services.common.lease import (WriterHeld, WriterIdentity, WriterLease, current_holder, lease_events,
                                   lease_key)

SCHEMA = "orders"


def identity(pid: int, host: str = "desk-1") -> WriterIdentity:
    return WriterIdentity(plane="order", host=host, pid=pid, session=f"s{pid}",
                          started_at=dt.datetime(2026, 1, 5, 9, 0, pid % 60, tzinfo=dt.timezone.utc))


class Losses:
    """Stands in for fail_stop: remembers why a lease was lost instead of ending the test process."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


async def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def admin(database_url):
    conn = await asyncpg.connect(database_url)
    # Each test starts with no lease history.
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    yield conn
    await conn.close()


FAST = WriterLeaseSettings(lease_seconds=5.0)


async def test_a_second_writer_is_refused_with_a_sentence_naming_the_holder(database_url, admin):
    holder = await WriterLease.acquire(database_url, identity=identity(4242), schema=SCHEMA, settings=FAST,
                                       on_lost=Losses())
    try:
        with pytest.raises(WriterHeld) as refused:
            await WriterLease.acquire(database_url, identity=identity(777, host="desk-2"), schema=SCHEMA,
                                      settings=FAST, on_lost=Losses())
        message = str(refused.value)
        assert "another order process is the writer of schema orders" in message
        assert "host desk-1, pid 4242, started 2026-01-05T09:00:42Z" in message
        assert "QUANTMESH_WRITER_STANDBY=true" in message
        assert refused.value.holder.identity == identity(4242)
        events = await lease_events(admin, SCHEMA)
        assert [(e.event, e.actor.pid, e.holder.pid if e.holder else None) for e in events] == [
            ("acquired", 4242, None), ("refused", 777, 4242)]
        assert events[1].reason == message and events[1].actor.host == "desk-2"
        seen = await current_holder(admin, SCHEMA)
        assert seen.identity == identity(4242) and seen.heartbeat_at is not None
    finally:
        await holder.release()
    assert await current_holder(admin, SCHEMA) is None


async def test_a_released_lease_is_acquired_by_the_next_writer_without_a_takeover(database_url, admin):
    first = await WriterLease.acquire(database_url, identity=identity(1), schema=SCHEMA, settings=FAST,
                                      on_lost=Losses())
    await first.release()
    second = await WriterLease.acquire(database_url, identity=identity(2), schema=SCHEMA, settings=FAST,
                                       on_lost=Losses())
    try:
        assert second.epoch == first.epoch + 1
        events = [(e.event, e.actor.pid, e.holder.pid if e.holder else None) for e in await lease_events(admin, SCHEMA)]
        assert events == [("acquired", 1, None), ("released", 1, None), ("acquired", 2, 1)]
    finally:
        await second.release()


async def test_a_holder_whose_session_ends_is_taken_over_by_the_standby(database_url, admin):
    holder_losses = Losses()
    holder = await WriterLease.acquire(database_url, identity=identity(10), schema=SCHEMA, settings=FAST,
                                       on_lost=holder_losses)
    standby_settings = WriterLeaseSettings(standby=True, lease_seconds=5.0)
    received = []

    async def on_event(event):
        received.append(event)

    standby = asyncio.create_task(WriterLease.acquire(database_url, identity=identity(11), schema=SCHEMA,
                                                      settings=standby_settings, on_event=on_event,
                                                      on_lost=Losses()))
    await wait_until(lambda: any(e.event == "standby" for e in received), 30, "the standby to announce itself")
    assert not standby.done()
    assert received[0].holder.pid == 10 and "behind host desk-1, pid 10" in received[0].reason
    # The holder's process dies: its session ends (kill -9 does the same to a plane process).
    backend = await admin.fetchval(f"SELECT backend_pid FROM {SCHEMA}.writer_lease")
    await admin.execute("SELECT pg_terminate_backend($1)", backend)
    successor = await asyncio.wait_for(standby, 30)
    try:
        takeover = received[-1]
        assert (takeover.event, takeover.actor.pid, takeover.holder.pid) == ("taken_over", 11, 10)
        assert "ended without releasing it" in takeover.reason
        # The old holder finds out at its next heartbeat and stops (here: says so).
        await wait_until(lambda: holder_losses.reasons, 30, "the old holder to notice")
        assert "lease connection failed" in holder_losses.reasons[0]
        assert (await current_holder(admin, SCHEMA)).identity.pid == 11
    finally:
        await successor.release()
        await holder.release()


async def test_a_silent_holder_stops_itself_and_the_server_frees_its_lease(database_url, admin):
    losses = Losses()
    silent = WriterLeaseSettings(lease_seconds=1.0)
    holder = await WriterLease.acquire(database_url, identity=identity(20), schema=SCHEMA, settings=silent,
                                       on_lost=losses)
    # A hang: this event loop does nothing for a while, so no heartbeat is sent. The watchdog thread
    # still runs; the server ends the silent session after lease_seconds.
    time.sleep(2.5)
    assert losses.reasons and "no heartbeat confirmed" in losses.reasons[0]
    successor = await wait_until(lambda: _try_acquire(database_url, identity(21)), 30, "the lease to be freed")
    try:
        events = await lease_events(admin, SCHEMA)
        assert (events[-1].event, events[-1].holder.pid) == ("taken_over", 20)
    finally:
        await successor.release()
        await holder.release()


async def _try_acquire(url: str, who: WriterIdentity) -> WriterLease | None:
    try:
        return await WriterLease.acquire(url, identity=who, schema=SCHEMA, settings=FAST, on_lost=Losses())
    except WriterHeld:
        return None


async def test_another_schema_is_another_lease(database_url, admin):
    orders = await WriterLease.acquire(database_url, identity=identity(30), schema=SCHEMA, settings=FAST,
                                       on_lost=Losses())
    control = await WriterLease.acquire(database_url, identity=identity(31), schema="control", settings=FAST,
                                        on_lost=Losses())
    try:
        assert lease_key(SCHEMA) != lease_key("control")
        assert (await current_holder(admin, "control")).identity.pid == 31
    finally:
        await control.release()
        await orders.release()
