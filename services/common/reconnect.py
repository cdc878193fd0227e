"""Following a server stream forever: one session after another, with backoff between failures.

A session returns True when it delivered something before it ended; the backoff then
restarts small, so a long healthy stream that breaks is retried at once, while a peer
that stays down is asked ever more slowly (up to `max_backoff` seconds). A session that
returns False (the stream ended before it delivered anything) counts as a failure: it
backs off and is warned about like a refused connection. `running()` is asked between
attempts too, so a follower told to stop while its peer is down stops.

The cap is low by default (`PEER_BACKOFF`): the mesh's peers are on the same network, and
a follower asleep in a long backoff after its peer came back is what the peer's clients
wait for. The order plane refuses entries until its first exposure view arrives; with a
2 s cap, a position plane that started a moment after it cost the first order of a
`backtest --mesh` 1.4-3.3 s. A refused connection costs the peer nothing, so asking twice
a second is cheap; the warning is what must not repeat at that rate: it is logged at the
first failure and then at most every `WARN_EVERY` seconds, with the attempt count.

Every session after the first is a reconnect. The process's wiring may name who counts
them (`count_reconnects`, used by services/common/metrics.py); a context variable carries
that counter, so every follower task the process starts afterwards inherits it without
each follower's constructor having to pass it along.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

ReconnectCounter = Callable[[str], None]


class StreamEndedEmpty(Exception):
    """A session that ended before it delivered anything: a failure, backed off like one.

    A peer that accepts the call and ends it at once (a plane draining for shutdown, a
    server that cannot serve the request yet) must not be asked again in a tight loop."""

#: Longest wait between attempts to reach a peer of the mesh, in seconds.
PEER_BACKOFF = 0.5
#: Least time between two "unreachable; retrying" warnings of one follower, in seconds.
WARN_EVERY = 10.0

_reconnect_counter: contextvars.ContextVar[ReconnectCounter | None] = contextvars.ContextVar(
    "quantmesh_reconnect_counter", default=None)


def count_reconnects(counter: ReconnectCounter) -> None:
    """Calls `counter(what)` on every reconnect of a follower started from this context on."""
    _reconnect_counter.set(counter)


async def follow_forever(session: Callable[[], Awaitable[bool]], *, what: str, address: str, log: logging.Logger,
                         max_backoff: float = PEER_BACKOFF, running: Callable[[], bool] = lambda: True,
                         monotonic: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    warned_at: float | None = None

    def log_retry(state) -> None:
        nonlocal warned_at
        now = monotonic()
        if state.attempt_number > 1 and warned_at is not None and now - warned_at < WARN_EVERY:
            return
        warned_at = now
        error = state.outcome.exception() if state.outcome else None
        log.warning(f"{what} unreachable; retrying", extra={
            "address": address, "attempt": state.attempt_number,
            "error": getattr(error, "details", lambda: None)() or repr(error)})

    counter = _reconnect_counter.get()
    sessions = 0

    async def counted_session() -> bool:
        nonlocal sessions
        sessions += 1
        if sessions > 1 and counter is not None:
            counter(what)
        return await session()

    while running():
        try:
            async for attempt in AsyncRetrying(
                    wait=wait_exponential(multiplier=0.05, min=0.05, max=max_backoff), sleep=sleep,
                    stop=lambda _state: not running(), retry=retry_if_exception_type(Exception),
                    before_sleep=log_retry, reraise=True):
                with attempt:
                    if not await counted_session():
                        raise StreamEndedEmpty(f"{what}: the stream ended before it sent anything")
        except Exception:
            if running():
                raise
            return  # asked to stop while the peer was failing: the last failure was logged already
