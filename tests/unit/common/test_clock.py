import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from services.common.clock import SimulatedClock, WallClock

T0 = datetime(2013, 2, 1, tzinfo=timezone.utc)


async def test_simulated_sleepers_wake_in_deadline_order_only_when_advanced():
    clock = SimulatedClock(T0)
    woke: list[str] = []

    async def sleeper(name, seconds):
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 10)), asyncio.create_task(sleeper("early", 5))]
    await asyncio.sleep(0)
    clock.advance(4)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance_to(T0 + timedelta(seconds=30))
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.now() == T0 + timedelta(seconds=30)


def test_simulated_clock_never_goes_backwards_and_needs_aware_time():
    clock = SimulatedClock(T0)
    clock.advance_to(T0 - timedelta(hours=1))
    assert clock.now() == T0
    with pytest.raises(ValueError):
        SimulatedClock(datetime(2013, 2, 1))


def test_wall_clock_is_utc():
    assert WallClock().now().tzinfo is timezone.utc
