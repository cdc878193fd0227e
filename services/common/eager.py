"""Work that must not be interrupted by its caller, started at once (Python 3.12's eager tasks, by hand).

The order plane runs a submit, and the paper venue a write to its book, as work of its own
that the caller only waits for (`asyncio.shield`), so a caller that goes away never stops it
half-way. A task for it costs a task, two turns of the event loop and a wake-up, even when the
work never waits for anything (an in-memory store written at once: the in-process backtest,
where that was a few percent of a run).

`start_eagerly` runs the work's first step at once, in a copy of the caller's context (as a
task would). Work that finishes in that step comes back as a finished future and no task is
made; work that waits goes on as a task from where it waits, exactly as a task started the
usual way would. A caller cannot be cancelled during the first step (it is synchronous: nothing
else runs), so the guarantee is the same: once started, only the work itself decides where it
stops. The one difference is when the work starts: now, rather than at the loop's next turn.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def start_eagerly(work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Future[T]:
    """A future of `work`'s result: finished already when the work never waited, else a task."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    try:
        waiting_on = context.run(work.send, None)
    except StopIteration as finished:
        done = loop.create_future()
        done.set_result(finished.value)
        return done
    except asyncio.CancelledError:
        done = loop.create_future()
        done.cancel()
        return done
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the work, as a task would
        done = loop.create_future()
        done.set_exception(exc)
        return done
    return loop.create_task(_Resumed(work, waiting_on), name=name, context=context)


class _Resumed(collections.abc.Coroutine):
    """`work`, already started and waiting on `waiting_on`, for a task to drive from there.

    Not a generator: one thrown into before its first step would raise at once, and a task
    cancelled before its first turn must still hand the cancellation to the work where it waits."""

    __slots__ = ("_work", "_waiting_on")

    def __init__(self, work: Coroutine[Any, Any, T], waiting_on: Any) -> None:
        self._work = work
        self._waiting_on = waiting_on  # until the task's first turn: what the work waits on

    def send(self, value: Any) -> Any:
        if self._waiting_on is not _STARTED:
            waiting_on, self._waiting_on = self._waiting_on, _STARTED
            return waiting_on  # the task waits on it, as it would have after the work's first step
        return self._work.send(value)

    def throw(self, *exc: Any) -> Any:
        if self._waiting_on is not _STARTED:  # cancelled before the task's first turn
            waiting_on, self._waiting_on = self._waiting_on, _STARTED
            thrown = exc[0] if len(exc) == 1 else exc[1]
            if isinstance(waiting_on, asyncio.Future) and isinstance(thrown, asyncio.CancelledError):
                waiting_on.cancel()  # what cancelling a task does to the future it waits on
        return self._work.throw(*exc)

    def close(self) -> None:
        self._work.close()

    def __await__(self):
        raise TypeError("a started piece of work is driven by its task, not awaited")


_STARTED = object()


__all__ = ["start_eagerly"]
