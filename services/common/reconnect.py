"""Following a server stream forever: one session after another, with backoff between failures.

A session returns True when it delivered something before it ended; the backoff then
restarts small, so a long healthy stream that breaks is retried at once, while a peer
that stays down is asked ever more slowly (up to `max_backoff` seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential


async def follow_forever(session: Callable[[], Awaitable[bool]], *, what: str, address: str, log: logging.Logger,
                         max_backoff: float = 2.0, running: Callable[[], bool] = lambda: True) -> None:
    def log_retry(state) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(f"{what} unreachable; retrying", extra={
            "address": address, "attempt": state.attempt_number,
            "error": getattr(error, "details", lambda: None)() or repr(error)})

    while running():
        async for attempt in AsyncRetrying(
                wait=wait_exponential(multiplier=0.05, min=0.05, max=max_backoff),
                retry=retry_if_exception_type(Exception), before_sleep=log_retry, reraise=True):
            delivered = False  # stays False when the attempt failed (tenacity swallows it to retry)
            with attempt:
                delivered = await session()
            if delivered:
                break
