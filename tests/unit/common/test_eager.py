import asyncio
import contextvars

import pytest

from services.common.eager import start_eagerly

seen = contextvars.ContextVar("seen", default="caller")


async def test_work_that_never_waits_is_done_at_once_without_a_task():
    steps = []

    async def work():
        steps.append("ran")
        return 42

    before = len(asyncio.all_tasks())
    future = start_eagerly(work())
    assert steps == ["ran"] and future.done() and future.result() == 42
    assert len(asyncio.all_tasks()) == before


async def test_a_failure_in_the_first_step_reaches_whoever_awaits():
    async def work():
        raise ValueError("refused")

    future = start_eagerly(work())
    with pytest.raises(ValueError, match="refused"):
        await future


async def test_work_that_waits_goes_on_as_a_task_and_a_cancelled_caller_does_not_stop_it():
    gate = asyncio.get_running_loop().create_future()
    steps = []

    async def work():
        steps.append("started")
        value = await gate
        steps.append(f"finished with {value}")
        return value

    flow = start_eagerly(work())
    assert steps == ["started"] and not flow.done()  # the first step ran at once

    caller = asyncio.ensure_future(asyncio.shield(flow))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    gate.set_result("the gate's value")
    assert await flow == "the gate's value"
    assert steps == ["started", "finished with the gate's value"]


async def test_the_work_runs_in_its_own_copy_of_the_callers_context():
    gate = asyncio.get_running_loop().create_future()

    async def work():
        seen.set("work")
        await gate
        return seen.get()

    flow = start_eagerly(work())
    assert seen.get() == "caller"  # what the first step set stays in the work's context
    gate.set_result(None)
    assert await flow == "work"
    assert seen.get() == "caller"


async def test_a_task_cancelled_before_its_first_turn_hands_the_cancellation_to_the_work_where_it_waits():
    gate = asyncio.get_running_loop().create_future()
    steps = []

    async def work():
        steps.append("started")
        try:
            await gate
        except asyncio.CancelledError:
            steps.append("cancelled while waiting")
            raise

    flow = start_eagerly(work())
    flow.cancel()  # before the loop gave the task a turn
    with pytest.raises(asyncio.CancelledError):
        await flow
    assert steps == ["started", "cancelled while waiting"]
    assert gate.cancelled()  # as a task's cancel cancels the future it waits on
