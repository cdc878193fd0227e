"""A plane's stop work is bounded, and a stop that hangs says where it waits."""

from __future__ import annotations

import asyncio
import logging

from services.common.server import stop_within


async def test_stop_work_that_finishes_is_waited_for():
    done = []

    async def on_stop():
        await asyncio.sleep(0.01)
        done.append(True)

    assert await stop_within(on_stop, 5.0) is True and done == [True]


async def test_stop_work_that_hangs_is_left_after_the_bound_with_an_error_naming_where(caplog):
    async def a_writer_that_never_returns():
        await asyncio.Event().wait()

    async def on_stop():
        await asyncio.create_task(a_writer_that_never_returns(), name="stuck writer")

    with caplog.at_level(logging.ERROR, logger="services.common.server"):
        assert await stop_within(on_stop, 0.2) is False
    (record,) = [r for r in caplog.records if "did not finish" in r.getMessage()]
    assert any(w.startswith("stuck writer at ") and "a_writer_that_never_returns" in w for w in record.waiting)
